// directDelivery (aedes-internals.ts): edgemq writes QoS 0 and clean-session QoS 1 deliveries
// itself instead of through aedes' per-delivery Packet copies and setImmediates. What aedes
// guaranteed must still hold: order across QoS levels, packet ids as QoSPacket takes them
// (wrapping at 65535), downgrade to the subscription's QoS, and QoS 1 never dropped for a
// subscriber that reads slowly.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'

import type { MqttClient } from 'mqtt'

import { connectedClient } from '../../src/broker/aedes-internals.js'
import { startHub } from '../../src/emulator/index.js'
import { connect } from '../helpers/mqtt.js'

async function hubWith(ids: string[]) {
  const hub = await startHub({ ports: { mqtts: null, rest: null } })
  for (const id of ids) await hub.createDevice(id)
  const port = hub.ports.mqtt as number
  const client = async (id: string) => connect({ port, clientId: id, password: await hub.sas(id) })
  return { hub, client }
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
  const { hub, client } = await hubWith(['pub', 'sub'])
  t.after(() => hub.close())
  const sub = await client('sub')
  t.after(() => sub.endAsync())
  await sub.subscribeAsync('order/#', { qos: 1 })
  const pub = await client('pub')
  t.after(() => pub.endAsync())
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
  const { hub, client } = await hubWith(['pub', 'sub'])
  t.after(() => hub.close())
  const sub = await client('sub')
  t.after(() => sub.endAsync())
  await sub.subscribeAsync('held/#', { qos: 1 })
  const pub = await client('pub')
  t.after(() => pub.endAsync())
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
