// Slow consumers (issue 15, items 2 and 3): a subscriber or an event-stream reader that stops
// reading must not stall anyone else nor grow the broker's memory without bound.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import mqttPacket from 'mqtt-packet'

import { connectedClient } from '../../src/broker/aedes-internals.js'
import type { HubEvent } from '../../src/broker/host.js'
import { startHub } from '../../src/emulator/index.js'
import { buildSasToken } from '../../src/sas/index.js'
import { collect, connect } from '../helpers/mqtt.js'
import { connackOf, connectPacket, rawSocket } from '../helpers/raw-socket.js'

const KiB = 1024

/** Bytes still reachable after a full GC: what the broker retains, not garbage RSS has not returned yet. */
function retainedBytes(): number {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}

/** A raw subscriber: CONNECT, SUBSCRIBE (QoS 0 by default), wait for the SUBACK, then never read again. */
async function stalledSubscriber(port: number, clientId: string, password: string, filter: string, opts: { qos?: 0 | 1; clean?: boolean } = {}): Promise<Socket> {
  const s = await rawSocket(port)
  s.write(connectPacket(clientId, password, { clean: opts.clean ?? true }))
  assert.equal(await connackOf(s), 0)
  const suback = new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      if (d.includes(0x90)) {
        s.off('data', onData)
        resolve()
      }
    }
    s.on('data', onData)
  })
  s.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: opts.qos ?? 0 }] }))
  await suback
  s.pause() // stops reading: the kernel buffers fill, then the broker's
  return s
}

test('item 3: a QoS 0 subscriber that stops reading does not stall another subscriber nor the publisher', async (t) => {
  // drainTimeoutSecs 1: QoS 0 never waits for a drain, so the stalled subscriber must outlive it.
  const hub = await startHub({ ports: { mqtts: null, rest: null }, settings: { drainTimeoutSecs: 1 } })
  const { maxQueuedBytes } = hub.broker.settings
  t.after(() => hub.close())
  for (const id of ['pub', 'slow', 'fast']) await hub.createDevice(id)
  const port = hub.ports.mqtt as number
  const slow = await stalledSubscriber(port, 'slow', await hub.sas('slow'), 'load/#')
  t.after(() => slow.destroy())
  const fast = await connect({ port, clientId: 'fast', password: await hub.sas('fast') })
  t.after(() => fast.endAsync())
  await fast.subscribeAsync('load/#', { qos: 0 })
  const pub = await connect({ port, clientId: 'pub', password: await hub.sas('pub') })
  t.after(() => pub.endAsync())

  // 2,000 × 4 KiB = 8 MiB: more than the stalled socket's kernel buffers and its bound together.
  const N = 2000
  const payload = Buffer.alloc(4 * KiB, 7)
  const start = Date.now()
  const got = collect(fast, N, { timeoutMs: 15_000 })
  // QoS 1, 50 in flight: a publisher that waits for its PUBACKs would be held up with the stalled
  // subscriber (the PUBACK follows delivery), and the other subscriber is never flooded by a burst.
  for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: 50 }, () => pub.publishAsync('load/x', payload, { qos: 1 })))
  const messages = await got
  const ms = Date.now() - start
  assert.equal(messages.length, N)
  assert.ok(ms < 10_000, `the other subscriber got ${N} messages in ${ms} ms (aedes' drain timeout alone is 60 s)`)
  const status = hub.broker.status() as { limits: { qos0Dropped: number } }
  assert.ok(status.limits.qos0Dropped > 0, 'messages to the stalled subscriber were dropped and counted')
  // Past the drain timeout (aedes' own QoS 0 delivery waited for 'drain' under it and dropped the client).
  if (ms < 1500) await new Promise((r) => setTimeout(r, 1500 - ms))
  // The broker holds at most the bound (plus a message or two) for it.
  const conn = connectedClient(hub.broker.aedes, 'slow')?.conn as Socket | undefined
  assert.ok(conn, 'the stalled subscriber is still connected (QoS 0 drops, no disconnect)')
  assert.ok(conn.writableLength <= maxQueuedBytes + 64 * KiB, `unsent bytes held: ${conn.writableLength}`)
})

test('item 3, QoS 1: a persistent subscriber that stops reading is dropped after drainTimeoutSecs; the others and the publisher go on, its queue stays bounded', async (t) => {
  const hub = await startHub({ ports: { mqtts: null, rest: null }, settings: { drainTimeoutSecs: 1, maxQueued: 100 } })
  t.after(() => hub.close())
  for (const id of ['pub', 'slow', 'fast']) await hub.createDevice(id)
  const port = hub.ports.mqtt as number
  const slow = await stalledSubscriber(port, 'slow', await hub.sas('slow'), 'load/#', { qos: 1, clean: false })
  t.after(() => slow.destroy())
  const slowGone = new Promise<void>((resolve) => hub.broker.aedes.on('clientDisconnect', (c) => c.id === 'slow' && resolve()))
  const fast = await connect({ port, clientId: 'fast', password: await hub.sas('fast') })
  t.after(() => fast.endAsync())
  await fast.subscribeAsync('load/#', { qos: 1 })
  const pub = await connect({ port, clientId: 'pub', password: await hub.sas('pub') })
  t.after(() => pub.endAsync())

  // 2,000 × 4 KiB QoS 1: far more than the stalled socket's kernel buffers hold.
  const N = 2000
  const payload = Buffer.alloc(4 * KiB, 7)
  const start = Date.now()
  const got = collect(fast, N, { timeoutMs: 30_000 })
  for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: 50 }, () => pub.publishAsync('load/x', payload, { qos: 1 })))
  const messages = await got
  const ms = Date.now() - start
  await slowGone
  assert.equal(messages.length, N)
  // aedes' own default (60 s) would hold every delivery that long; here the stall costs about 1 s.
  assert.ok(ms < 20_000, `the other subscriber got ${N} QoS 1 messages in ${ms} ms`)
  // Offline now, the stalled session keeps at most maxQueued (the rest dropped and counted).
  const status = hub.broker.status() as { sessions: { droppedByClient: Record<string, number> } }
  assert.ok((status.sessions.droppedByClient.slow ?? 0) > 0, 'the persistent queue of the stalled client hit its bound')
})

test('item 2: an event-stream reader that never reads is disconnected at its bound; broker memory stays bounded', async (t) => {
  const hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: null } })
  t.after(() => hub.close())
  const policy = hub.context.hub.policies.find((p) => p.name === 'service')!
  const token = buildSasToken({ resource: hub.hostName, key: policy.primaryKey, policyName: policy.name, durationSecs: 600 })
  const s = await rawSocket(hub.ports.control)
  t.after(() => s.destroy())
  const events = hub.broker.iothub.events
  const listenersBefore = events.listenerCount('event')
  const subscribed = new Promise<void>((resolve) => s.once('data', () => resolve()))
  s.write(`GET /edgemq/events HTTP/1.1\r\nHost: ${hub.hostName}\r\nAuthorization: ${token}\r\n\r\n`)
  await subscribed
  s.pause() // and never reads again (a suspended `edgemq monitor`)
  assert.equal(events.listenerCount('event'), listenersBefore + 1)

  const before = retainedBytes()
  // 30,000 telemetry events of 4 KiB (≈ 165 MB as base64 NDJSON) to the one stalled reader.
  const payload = Buffer.alloc(4 * 1024, 7)
  for (let i = 0; i < 30_000; i++) {
    const ev: HubEvent = { deviceId: 'd1', properties: {}, systemProperties: {}, payload, enqueuedTime: new Date().toISOString() }
    events.emit('event', ev)
    if (i % 1000 === 0) await new Promise((r) => setImmediate(r)) // let the socket flush what it can
  }
  const growth = retainedBytes() - before
  assert.equal(events.listenerCount('event'), listenersBefore, 'the stalled reader was dropped')
  const status = hub.broker.status() as { limits: { refused: Record<string, number> } }
  assert.equal(status.limits.refused['event-reader-dropped'], 1)
  // RSS was the measure once; it counts garbage not yet returned to the OS (67 MiB on one CI run).
  assert.ok(growth < 16 * 1024 * 1024, `retained memory grew by ${(growth / 1024 / 1024).toFixed(1)} MiB`)
})
