/** IoT Hub's per-device C2D queue (pure, injected clock): depth 50, TTL 1 h or $.exp, oldest first. */
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { QueueFullError, toWireError } from '../../src/errors.js'
import { C2D_DEFAULT_TTL_MS, C2D_MAX_QUEUE_DEPTH, C2dQueue } from '../../src/iothub/c2d-queue.js'

const msg = (n: number, expiryTimeUtc?: string) => ({ messageId: `m${n}`, topic: `devices/d/messages/devicebound/%24.mid=m${n}`, payload: Buffer.from(`p${n}`), expiryTimeUtc })

test('IoT Hub limits: 50 messages, 1 hour', () => {
  assert.equal(C2D_MAX_QUEUE_DEPTH, 50)
  assert.equal(C2D_DEFAULT_TTL_MS, 3_600_000)
})

test('messages come out oldest first, once; queues are per device', () => {
  const q = new C2dQueue()
  q.enqueue('d', msg(1))
  q.enqueue('d', msg(2))
  q.enqueue('e', msg(3))
  assert.equal(q.depth('d'), 2)
  assert.deepEqual(q.take('d').map((m) => m.messageId), ['m1', 'm2'])
  assert.deepEqual(q.take('d'), [])
  assert.equal(q.depth('e'), 1)
})

test('the 51st message is refused (403 DeviceMaximumQueueDepthExceeded); expired ones free room', () => {
  let now = 1_000_000
  const q = new C2dQueue({ now: () => now })
  for (let i = 0; i < 50; i++) q.enqueue('d', msg(i, i === 0 ? new Date(now + 1000).toISOString() : undefined))
  const err = (() => {
    try {
      q.enqueue('d', msg(50))
    } catch (e) {
      return e
    }
  })()
  assert.ok(err instanceof QueueFullError)
  const wire = toWireError(err)
  assert.equal(wire.status, 403)
  assert.equal(wire.body.errorCode, 'DeviceMaximumQueueDepthExceeded')
  now += 1001 // m0 expired
  q.enqueue('d', msg(50))
  assert.equal(q.depth('d'), 50)
})

test('default TTL 1 h; $.exp overrides it; expired messages are never handed out', () => {
  let now = 5_000_000
  const q = new C2dQueue({ now: () => now })
  const a = q.enqueue('d', msg(1))
  assert.equal(a.expiresAt, now + 3_600_000)
  q.enqueue('d', msg(2, new Date(now + 10_000).toISOString()))
  q.enqueue('d', msg(3, new Date(now - 1).toISOString())) // already expired
  now += 20_000
  assert.deepEqual(q.take('d').map((m) => m.messageId), ['m1'])
  assert.equal(q.expired, 2)
  q.enqueue('d', msg(4))
  now += 3_600_000
  assert.deepEqual(q.take('d'), [])
})

test('purge drops a device\'s queue', () => {
  const q = new C2dQueue()
  q.enqueue('d', msg(1))
  assert.equal(q.purge('d'), 1)
  assert.equal(q.depth('d'), 0)
})

test('locks (HTTPS receive): a locked message is hidden from take() and other receives until settled or lapsed', () => {
  let now = 1_000_000
  const q = new C2dQueue({ now: () => now })
  q.enqueue('d', msg(1))
  q.enqueue('d', msg(2))
  const a = q.lock('d', 30_000)
  assert.equal(a?.messageId, 'm1')
  assert.equal(a?.deliveryCount, 1)
  assert.equal(q.lock('d', 30_000)?.messageId, 'm2', 'the next receive gets the next message')
  assert.equal(q.lock('d', 30_000), undefined, 'both locked: nothing to receive')
  assert.deepEqual(q.take('d'), [], 'locked messages are not delivered over MQTT either')
  assert.equal(q.depth('d'), 2, 'but still queued')

  assert.deepEqual(q.settle('d', a!.lockToken!, 'complete').outcome, 'Success')
  assert.equal(q.depth('d'), 1)
  assert.throws(() => q.settle('d', a!.lockToken!, 'complete'), { code: 'PRECONDITION_FAILED' }, 'settled twice')

  now += 30_001
  assert.deepEqual(q.take('d').map((m) => m.messageId), ['m2'], 'a lapsed lock makes the message deliverable again')
})

test('abandon puts the message back; the 10th delivery abandoned drops it (DeliveryCountExceeded); reject drops it (Rejected)', () => {
  const q = new C2dQueue()
  q.enqueue('d', msg(1))
  for (let n = 1; n < 10; n++) {
    const m = q.lock('d')!
    assert.equal(m.deliveryCount, n)
    assert.equal(q.settle('d', m.lockToken!, 'abandon').outcome, undefined)
  }
  const last = q.lock('d')!
  assert.equal(last.deliveryCount, 10)
  assert.equal(q.settle('d', last.lockToken!, 'abandon').outcome, 'DeliveryCountExceeded')
  assert.equal(q.depth('d'), 0)

  q.enqueue('d', msg(2))
  const r = q.lock('d')!
  assert.equal(q.settle('d', r.lockToken!, 'reject').outcome, 'Rejected')
  assert.equal(q.depth('d'), 0)
  assert.throws(() => q.settle('d', 'not-a-lock', 'abandon'), { code: 'PRECONDITION_FAILED' })
})
