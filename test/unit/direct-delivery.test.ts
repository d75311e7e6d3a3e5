// directDelivery (aedes-internals.ts): edgemq writes QoS 0 and clean-session QoS 1 deliveries
// itself instead of through aedes' per-delivery Packet copies and setImmediates. What aedes
// guaranteed must still hold: order across QoS levels, packet ids as QoSPacket takes them
// (wrapping at 65535), downgrade to the subscription's QoS, and QoS 1 never dropped for a
// subscriber that reads slowly.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'

import type { MqttClient } from 'mqtt'

import mqttPacket from 'mqtt-packet'

import { brokerPersistence, connectedClient } from '../../src/broker/aedes-internals.js'
import { startHub } from '../../src/emulator/index.js'
import { connect } from '../helpers/mqtt.js'
import { connackOf, connectPacket, rawSocket } from '../helpers/raw-socket.js'

async function hubWith(ids: string[]) {
  const hub = await startHub({ ports: { mqtts: null, rest: null } })
  for (const id of ids) await hub.createDevice(id)
  const port = hub.ports.mqtt as number
  const client = async (id: string) => connect({ port, clientId: id, password: await hub.sas(id) })
  return { hub, client }
}

/** A hub with `sub` subscribed to `filter` at QoS 1 and `pub` connected, all closed after the test. */
async function pubSub(t: TestContext, filter: string) {
  const { hub, client } = await hubWith(['pub', 'sub'])
  t.after(() => hub.close())
  const sub = await client('sub')
  t.after(() => sub.endAsync())
  await sub.subscribeAsync(filter, { qos: 1 })
  const pub = await client('pub')
  t.after(() => pub.endAsync())
  return { hub, sub, pub }
}

interface Got {
  topic: string
  payload: string
  qos: number
  messageId?: number
}

function record(c: MqttClient, n: number): Promise<Got[]> {
  const got: Got[] = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} messages arrived`)), 15_000)
    c.on('message', (topic, payload, packet) => {
      got.push({ topic, payload: payload.toString(), qos: packet.qos, messageId: packet.messageId })
      if (got.length === n) {
        clearTimeout(timer)
        resolve(got)
      }
    })
  })
}

test('QoS 0 and QoS 1 publishes to one subscriber arrive in publish order, each QoS in its own order', async (t) => {
  const { sub, pub } = await pubSub(t, 'order/#')
  const N = 2000
  const got = record(sub, N)
  // The QoS of each publish from a fixed pattern, all in flight together. aedes publishes a QoS 1
  // message after its PUBACK is written, so a QoS 0 message read with it may overtake it (as in
  // aedes): the order holds within each QoS (MQTT 3.1.1 §4.6).
  const qosOf = (i: number) => ((i * 7919) % 3 === 0 ? 0 : 1) as 0 | 1
  await Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync('order/x', String(i), { qos: qosOf(i) })))
  const messages = await got
  for (const qos of [0, 1]) {
    assert.deepEqual(
      messages.filter((m) => m.qos === qos).map((m) => m.payload),
      Array.from({ length: N }, (_, i) => i)
        .filter((i) => qosOf(i) === qos)
        .map(String),
    )
  }
  const ids = messages.filter((m) => m.qos === 1).map((m) => m.messageId)
  assert.equal(new Set(ids).size, ids.length, 'every QoS 1 delivery had its own packet id')
})

test('packet ids are taken as aedes takes them and wrap from 65535 to 1; a QoS 0 subscription gets QoS 0', async (t) => {
  const { hub, client } = await hubWith(['pub', 'sub', 'low'])
  t.after(() => hub.close())
  const sub = await client('sub')
  t.after(() => sub.endAsync())
  await sub.subscribeAsync('ids/x', { qos: 1 })
  const low = await client('low')
  t.after(() => low.endAsync())
  await low.subscribeAsync('ids/x', { qos: 0 })
  const aedesClient = connectedClient(hub.broker.aedes, 'sub') as unknown as { _nextId: number }
  aedesClient._nextId = 65533
  const pub = await client('pub')
  t.after(() => pub.endAsync())
  const got = record(sub, 5)
  const gotLow = record(low, 5)
  for (let i = 0; i < 5; i++) await pub.publishAsync('ids/x', `m${i}`, { qos: 1 })
  assert.deepEqual(
    (await got).map((m) => [m.payload, m.qos, m.messageId]),
    [
      ['m0', 1, 65533],
      ['m1', 1, 65534],
      ['m2', 1, 65535],
      ['m3', 1, 1],
      ['m4', 1, 2],
    ],
  )
  assert.deepEqual(
    (await gotLow).map((m) => [m.payload, m.qos]),
    ['m0', 'm1', 'm2', 'm3', 'm4'].map((p) => [p, 0]),
  )
})

test('QoS 1 to a clean subscriber that stops reading is held, not dropped: every message arrives once it reads again', async (t) => {
  const { hub, sub, pub } = await pubSub(t, 'held/#')
  const N = 200
  const payload = Buffer.alloc(128 * 1024, 1)
  const stream = (sub as unknown as { stream: { pause(): void; resume(): void } }).stream
  // 200 × 128 KiB = 25 MiB: far past the loopback socket buffers, so the broker must wait for 'drain'.
  stream.pause()
  const held = connectedClient(hub.broker.aedes, 'sub') as unknown as { waitForDrain(cb: () => void): void; conn: Socket }
  const waiting = new Promise<void>((resolve) => {
    const waitForDrain = held.waitForDrain.bind(held)
    held.waitForDrain = (cb) => (resolve(), waitForDrain(cb))
  })
  const got = record(sub, N)
  let acked = 0
  const published = Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync('held/x', Buffer.concat([Buffer.from(`${i}:`), payload]), { qos: 1 }).then(() => acked++)))
  await waiting
  // Some turns later the broker has still not read on: aedes reads a client's next packets only
  // once the deliveries of its last read are written or drained, so the publisher is held back and
  // the broker's buffer for the subscriber stays small.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
  assert.ok(acked < N, `${acked} of ${N} PUBACKs while the subscriber read nothing`)
  assert.ok(held.conn.writableLength < 4 * 1024 * 1024, `unsent bytes held for the subscriber: ${held.conn.writableLength}`)
  stream.resume()
  const messages = await got
  await published
  assert.deepEqual(
    messages.map((m) => m.payload.slice(0, m.payload.indexOf(':'))),
    Array.from({ length: N }, (_, i) => String(i)),
  )
})

test('retained QoS 1 messages sent at SUBSCRIBE past the socket buffer all arrive (the drain wait calls back as aedes does)', async (t) => {
  const { hub, client } = await hubWith(['pub', 'sub'])
  t.after(() => hub.close())
  const pub = await client('pub')
  t.after(() => pub.endAsync())
  const N = 40
  const payload = Buffer.alloc(64 * 1024, 0x61)
  for (let i = 0; i < N; i++) await pub.publishAsync(`ret/${i}`, payload, { qos: 1, retain: true })
  const sub = await client('sub')
  t.after(() => sub.endAsync())
  // aedes sends them through an object stream that stopped after 16 when the drain callback passed it a value.
  const got = record(sub, N)
  await sub.subscribeAsync('ret/#', { qos: 1 })
  assert.equal(new Set((await got).map((m) => m.topic)).size, N)
})

test('a subscriber that closes while retained QoS 1 deliveries wait for a drain does not take the broker down', async (t) => {
  const { hub, client } = await hubWith(['pub', 'sub', 'other'])
  t.after(() => hub.close())
  const pub = await client('pub')
  t.after(() => pub.endAsync())
  const payload = Buffer.alloc(256 * 1024, 0x61)
  for (let i = 0; i < 20; i++) await pub.publishAsync(`ret/${i}`, payload, { qos: 1, retain: true })
  const s = await rawSocket(hub.ports.mqtt as number)
  s.write(connectPacket('sub', await hub.sas('sub')))
  assert.equal(await connackOf(s), 0)
  s.pause()
  const held = connectedClient(hub.broker.aedes, 'sub') as unknown as { waitForDrain(cb: () => void): void }
  const waiting = new Promise<void>((resolve) => {
    const waitForDrain = held.waitForDrain.bind(held)
    held.waitForDrain = (cb) => (resolve(), waitForDrain(cb))
  })
  s.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ret/#', qos: 1 }] }))
  await waiting
  const gone = new Promise<void>((resolve) => hub.broker.aedes.on('clientDisconnect', (c) => c.id === 'sub' && resolve()))
  s.destroy() // aedes fails the pending drain callbacks with "connection closed": an uncaught error ended the process
  await gone
  const other = await client('other')
  t.after(() => other.endAsync())
  await other.subscribeAsync('live/x', { qos: 1 })
  const got = record(other, 1)
  await pub.publishAsync('live/x', 'still serving', { qos: 1 })
  assert.equal((await got)[0].payload, 'still serving')
})

test('a publisher whose packet never completes (aedes on a store error) is read on after the stall bound', async (t) => {
  const hub = await startHub({ ports: { mqtts: null, rest: null }, settings: { drainTimeoutSecs: 1 } })
  t.after(() => hub.close())
  for (const id of ['pub', 'sub']) await hub.createDevice(id)
  const port = hub.ports.mqtt as number
  const sub = await connect({ port, clientId: 'sub', password: await hub.sas('sub') })
  t.after(() => sub.endAsync())
  await sub.subscribeAsync('t/#', { qos: 1 })
  const pub = await connect({ port, clientId: 'pub', password: await hub.sas('pub') })
  t.after(() => pub.end(true))
  // aedes' enqueueOffline emits 'error' and never calls back when this rejects (aedes.js DoEnqueues.done).
  const persistence = brokerPersistence(hub.broker.aedes)
  const byTopic = persistence.subscriptionsByTopic.bind(persistence)
  let failed: () => void = () => {}
  const failedOnce = new Promise<void>((resolve) => (failed = resolve))
  persistence.subscriptionsByTopic = () => {
    persistence.subscriptionsByTopic = byTopic
    failed()
    return Promise.reject(new Error('store error (test)'))
  }
  void pub.publishAsync('t/0', 'stuck', { qos: 1 }).catch(() => undefined)
  await failedOnce
  const got = record(sub, 5)
  const start = Date.now()
  await Promise.all(Array.from({ length: 5 }, (_, i) => pub.publishAsync(`t/${i + 1}`, 'x', { qos: 1 })))
  assert.equal((await got).length, 5)
  // The bound is the drain timeout (1 s here) + 1 s; aedes read on at once, a keepalive (90 s) would otherwise.
  assert.ok(Date.now() - start < 10_000)
})

test('a client that stops reading while its own writes wait, subscribed to its own QoS 1 publishes, is not deadlocked', async (t) => {
  const { hub } = await hubWith(['echo'])
  t.after(() => hub.close())
  const s = await rawSocket(hub.ports.mqtt as number)
  t.after(() => s.destroy())
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()))
  const N = 300
  const parser = mqttPacket.parser()
  let got = 0
  let acks = 0
  let subscribed: () => void = () => {}
  const suback = new Promise<void>((resolve) => (subscribed = resolve))
  let finished: () => void = () => {}
  const done = new Promise<void>((resolve) => (finished = resolve))
  // Strict backpressure, as a stream pipe does: no reading while a PUBACK write waits for 'drain'.
  parser.on('packet', (p: mqttPacket.Packet) => {
    if (p.cmd === 'suback') subscribed()
    if (p.cmd === 'puback') acks++
    if (p.cmd === 'publish') {
      got++
      if (!s.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))) {
        s.pause()
        s.once('drain', () => s.resume())
      }
    }
    if (got === N && acks === N) finished()
  })
  s.on('data', (d: Buffer) => parser.parse(d))
  s.write(connectPacket('echo', await hub.sas('echo')))
  s.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'echo/#', qos: 1 }] }))
  await suback
  // 300 × 64 KiB QoS 1 to itself: the broker's writes to it fill its socket while its own publishes
  // wait behind them. Paced reads alone waited on it until the drain timeout closed it (5 s).
  const payload = Buffer.alloc(64 * 1024, 0x61)
  for (let i = 0; i < N; i++) s.write(mqttPacket.generate({ cmd: 'publish', topic: 'echo/a', payload, qos: 1, messageId: i + 1, retain: false, dup: false }))
  const outcome = await Promise.race([done.then(() => 'all delivered and acknowledged'), closed.then(() => `closed by the broker after ${got} deliveries and ${acks} PUBACKs`)])
  assert.equal(outcome, 'all delivered and acknowledged')
})
