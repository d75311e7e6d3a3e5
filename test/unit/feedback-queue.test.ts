/** The hub-wide C2D feedback queue (src/iothub/feedback.ts): pure, with an injected clock. */
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { FeedbackQueue, parseFeedbackAck, wantsFeedback, type FeedbackStatus } from '../../src/iothub/index.js'

const msg = (messageId: string, deviceId = 'd1') => ({ messageId, deviceId, deviceGenerationId: 'g1' })

test('which acks ask for which outcomes (IoT Hub: positive = Success, negative = the failures, full = all)', () => {
  const statuses: FeedbackStatus[] = ['Success', 'Expired', 'DeliveryCountExceeded', 'Rejected']
  const table = Object.fromEntries((['none', 'positive', 'negative', 'full', undefined] as const).map((a) => [String(a), statuses.filter((s) => wantsFeedback(a, s))]))
  assert.deepEqual(table, {
    none: [],
    positive: ['Success'],
    negative: ['Expired', 'DeliveryCountExceeded', 'Rejected'],
    full: statuses,
    undefined: [],
  })
  assert.equal(parseFeedbackAck('FULL'), 'full')
  assert.equal(parseFeedbackAck('sometimes'), undefined)
  assert.equal(parseFeedbackAck(3), undefined)
})

test('take → accept removes; take → release puts the batch back at the head, in order', () => {
  let now = 1_000_000
  const q = new FeedbackQueue({ batchSize: 2, now: () => now })
  for (const id of ['a', 'b', 'c']) q.add(msg(id), 'Success')
  const first = q.take()
  assert.deepEqual(first?.records.map((r) => r.originalMessageId), ['a', 'b'])
  assert.equal(q.depth, 1)
  q.settle(first!.lockToken, 'release')
  assert.equal(q.depth, 3)
  const again = q.take()
  assert.deepEqual(again?.records.map((r) => r.originalMessageId), ['a', 'b'])
  q.settle(again!.lockToken, 'accept')
  q.settle(again!.lockToken, 'release') // settling twice changes nothing
  assert.deepEqual(q.take()?.records.map((r) => r.originalMessageId), ['c'])
  assert.equal(q.take(), undefined)
  now += 1
  const rec = q.add(msg('e', 'd2'), 'Expired')
  assert.deepEqual(rec, { originalMessageId: 'e', description: 'Message Expired', deviceGenerationId: 'g1', deviceId: 'd2', enqueuedTimeUtc: new Date(now).toISOString(), statusCode: 'Expired' })
})

test('a filter takes only matching records and leaves the others; bounded by count and by TTL', () => {
  let now = 0
  const q = new FeedbackQueue({ maxRecords: 3, ttlMs: 1000, now: () => now })
  q.add(msg('x1', 'x'), 'Success')
  q.add(msg('y1', 'y'), 'Success')
  assert.deepEqual(q.take((r) => r.deviceId === 'y')?.records.map((r) => r.originalMessageId), ['y1'])
  assert.equal(q.depth, 1)
  for (const id of ['x2', 'x3', 'x4']) q.add(msg(id, 'x'), 'Success')
  assert.equal(q.depth, 3)
  assert.equal(q.dropped, 1)
  assert.deepEqual(q.take()?.records.map((r) => r.originalMessageId), ['x2', 'x3', 'x4'])
  q.add(msg('old'), 'Success')
  now += 1001
  assert.equal(q.take(), undefined)
  assert.equal(q.dropped, 2)
})
