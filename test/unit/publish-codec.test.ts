// src/broker/publish-codec.ts: the broker's own PUBLISH/PUBACK codec gives exactly what
// mqtt-packet gives (packets field for field, bytes byte for byte) or declines; and on a real
// broker, packets split across chunks and mixed with other packets arrive whole and in order.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { isDeepStrictEqual } from 'node:util'

import mqttPacket from 'mqtt-packet'

import { installPacketGuard, MqttFramer } from '../../src/broker/packet-guard.js'
import { decodeFast, fastCodecStats, wholePacketAt, writeFast } from '../../src/broker/publish-codec.js'
import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { startTestHub } from '../helpers/hub.js'
import { collect, connect, iothubUsername, subscribeOk } from '../helpers/mqtt.js'
import { SEED_FIXTURES } from '../helpers/paths.js'
import { mulberry32 } from '../helpers/prng.js'

const rand = mulberry32(0x16c0dec)
const int = (n: number) => Math.floor(rand() * n)
const TOPIC_CHARS = ['a', 'b', '/', '$', '+', '#', ' ', 'é', '日', '😀', '\u0000', '\ud800']
const randomTopic = () => Array.from({ length: int(4) === 0 ? 0 : 1 + int(40) }, () => TOPIC_CHARS[int(TOPIC_CHARS.length)]).join('')
const randomPayload = () => {
  const size = [0, 1, 20, 300, 2048, 2049, 20_000][int(7)]
  return Buffer.from(Array.from({ length: size }, () => int(256)))
}

/** What mqtt-packet's own parser makes of `bytes` (one fresh parser, MQTT 3.1.1). */
function mqttPacketParse(bytes: Buffer): { packets: unknown[]; error?: Error } {
  const parser = mqttPacket.parser()
  const packets: unknown[] = []
  let error: Error | undefined
  parser.on('packet', (p) => packets.push(p))
  parser.on('error', (e) => (error ??= e))
  parser.parse(bytes)
  return { packets, error }
}

/** A PUBLISH or PUBACK as bytes, well-formed or with one thing wrong. */
function randomPacketBytes(): { bytes: Buffer; wellFormed: boolean } {
  const kind = int(10)
  if (kind === 0) {
    const bytes = Buffer.from([0x40, 2, int(256), int(256)])
    const broken = int(3)
    if (broken === 1) bytes[0] = 0x42 // flags must be 0
    if (broken === 2) return { bytes: Buffer.from([0x40, 3, int(256), int(256), 0]), wellFormed: false }
    return { bytes, wellFormed: broken === 0 }
  }
  const qos = int(3)
  const packet = { cmd: 'publish' as const, qos: qos as 0 | 1 | 2, dup: rand() < 0.3, retain: rand() < 0.3, topic: randomTopic(), payload: randomPayload(), messageId: int(65536) }
  const bytes = mqttPacket.generate(packet)
  const broken = int(6)
  if (broken === 1) bytes[0] |= 0x06 // QoS 3
  else if (broken === 2 && bytes.length > 3) return { bytes: truncatedBody(bytes, qos > 0 ? 3 : 1), wellFormed: false }
  return { bytes, wellFormed: broken !== 1 }
}

/** The packet with a remaining length too short for its topic (and message id): `keep` body bytes. */
function truncatedBody(bytes: Buffer, keep: number): Buffer {
  const whole = wholePacketAt(bytes, 0)!
  return Buffer.concat([Buffer.from([bytes[0], keep]), bytes.subarray(whole.body, whole.body + keep)])
}

test('decodeFast: every packet it decodes is the one mqtt-packet parses; it declines the rest', () => {
  let decoded = 0
  let declined = 0
  for (let i = 0; i < 3000; i++) {
    const { bytes, wellFormed } = randomPacketBytes()
    const whole = wholePacketAt(bytes, 0)
    assert.ok(whole, 'a whole packet')
    assert.equal(whole.end, bytes.length)
    const fast = decodeFast(bytes, 0, whole.body, whole.end)
    const reference = mqttPacketParse(bytes)
    if (fast === undefined) {
      declined++
      assert.ok(!wellFormed, `a well-formed packet was declined: ${bytes.subarray(0, 8).toString('hex')}`)
      continue
    }
    decoded++
    assert.equal(reference.error, undefined, 'mqtt-packet accepts what the fast path decodes')
    assert.equal(reference.packets.length, 1)
    assert.deepStrictEqual(fast, reference.packets[0])
  }
  assert.ok(decoded > 1500 && declined > 500, `both paths exercised (decoded ${decoded}, declined ${declined})`)
})

test('wholePacketAt: only a packet that is all there; a fifth length byte is not one', () => {
  const p = mqttPacket.generate({ cmd: 'publish', qos: 0, dup: false, retain: false, topic: 't', payload: Buffer.alloc(200) })
  assert.deepEqual(wholePacketAt(p, 0), { body: 3, end: p.length })
  assert.equal(wholePacketAt(p.subarray(0, p.length - 1), 0), undefined)
  assert.equal(wholePacketAt(p.subarray(0, 2), 0), undefined)
  assert.equal(wholePacketAt(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 0), undefined)
  const two = Buffer.concat([Buffer.from([0xc0, 0x00]), p])
  assert.deepEqual(wholePacketAt(two, 2), { body: 5, end: two.length })
})

/** A Writable that keeps what reaches it, and whether each write() asked to wait. */
function sink(highWaterMark = 16 * 1024): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = []
  const w = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk)
      cb()
    },
  })
  return Object.assign(w, { bytes: () => Buffer.concat(chunks) })
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

test('writeFast: the same bytes and the same return value as mqtt-packet for PUBLISH and PUBACK', async () => {
  for (let i = 0; i < 1500; i++) {
    const kind = int(8)
    const packet =
      kind === 0
        ? { cmd: 'puback', messageId: int(65536) }
        : { cmd: 'publish', qos: int(3), dup: rand() < 0.3, retain: rand() < 0.3, topic: randomTopic(), payload: int(5) === 0 ? randomTopic() : randomPayload(), messageId: int(65536) }
    const hwm = [1, 64, 16 * 1024][int(3)]
    const [fast, reference] = [sink(hwm), sink(hwm)]
    const got = writeFast(packet, fast)
    const want = mqttPacket.writeToStream(packet as mqttPacket.Packet, reference)
    assert.equal(got, want, `return value for ${JSON.stringify({ ...packet, payload: undefined })}`)
    await tick()
    assert.deepEqual(fast.bytes(), reference.bytes())
  }
})

test('writeFast: declines, writing nothing, what it cannot vouch for', async () => {
  for (const packet of [
    { cmd: 'pingresp' },
    { cmd: 'publish', qos: 1, topic: 't', payload: 'x' }, // no message id
    { cmd: 'publish', qos: 3, topic: 't', payload: 'x', messageId: 1 },
    { cmd: 'publish', qos: 0, topic: Buffer.from('t'), payload: 'x' },
    { cmd: 'publish', qos: 0, topic: 't', payload: 12 },
    { cmd: 'publish', qos: 0, topic: 'x'.repeat(70_000), payload: '' },
    { cmd: 'puback', messageId: 70_000 },
    { cmd: 'puback', messageId: 1.5 },
  ]) {
    const s = sink()
    assert.equal(writeFast(packet, s), undefined, JSON.stringify(packet).slice(0, 80))
    await tick()
    assert.equal(s.bytes().length, 0)
  }
})

test('on a real broker: PUBLISHes split across chunks and mixed with other packets arrive whole, in order; a bad packet after good ones ends the connection after them', async () => {
  const t = await startTestHub({ inMemory: true, ports: { mqtts: null, rest: null } })
  const sockets: Socket[] = []
  try {
    await t.hub.setEdgeHub(readFileSync(join(SEED_FIXTURES, 'seed-policy-pubsub.json'), 'utf8'))
    const token = async (id: string) => buildSasToken({ resource: deviceResource('edgemq', id), key: (await t.hub.createDevice(id)).primaryKey!, durationSecs: 3600 })
    const sub = await connect({ port: t.ports.mqtt, clientId: 'sub_client', password: await token('sub_client') })
    await subscribeOk(sub, 'test_topic', 1)
    const pubToken = await token('pub_client')

    // A raw publisher: whatever the broker writes back is kept.
    const raw = async () => {
      const s = netConnect(t.ports.mqtt, '127.0.0.1')
      sockets.push(s)
      const received: Buffer[] = []
      s.on('data', (b: Buffer) => received.push(b))
      await once(s, 'connect')
      s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'pub_client', keepalive: 0, username: iothubUsername('pub_client'), password: Buffer.from(pubToken) }))
      while (Buffer.concat(received).length < 4) await once(s, 'data')
      assert.deepEqual(Buffer.concat(received).subarray(0, 4), Buffer.from([0x20, 2, 0, 0]), 'CONNACK accepted')
      received.length = 0
      return { s, received: () => Buffer.concat(received) }
    }
    const publish = (payload: string, qos: 0 | 1 = 0, messageId = 0) => mqttPacket.generate({ cmd: 'publish', topic: 'test_topic', payload, qos, dup: false, retain: false, messageId })

    const p = await raw()
    const got = collect(sub, 5)
    const before = { ...fastCodecStats }
    const c = publish('c'.repeat(300))
    p.s.write(Buffer.concat([publish('a'), mqttPacket.generate({ cmd: 'pingreq' }), publish('b', 1, 7), c.subarray(0, 5)]))
    // The broker answers what it has whole (PUBACK 7 once `b` is through); `c` waits for its end.
    while (!p.received().includes(Buffer.from([0x40, 2, 0, 7]))) await once(p.s, 'data')
    p.s.write(c.subarray(5, 100))
    p.s.write(Buffer.concat([c.subarray(100), publish('d', 1, 8), publish('e', 1, 9)]))
    assert.deepEqual((await got).map((m) => m.payload.toString()), ['a', 'b', 'c'.repeat(300), 'd', 'e'])
    // PINGRESP and PUBACKs 7, 8, 9 (aedes answers PINGREQ at once, a PUBACK once its publish is done).
    while (p.received().length < 14) await once(p.s, 'data')
    assert.equal(p.received().length, 14)
    assert.ok(p.received().includes(Buffer.from([0xd0, 0])), 'PINGRESP')
    assert.ok(p.received().includes(Buffer.from([0x40, 2, 0, 7])) && p.received().includes(Buffer.from([0x40, 2, 0, 8])) && p.received().includes(Buffer.from([0x40, 2, 0, 9])), 'PUBACKs 7, 8 and 9')
    assert.ok(fastCodecStats.decoded - before.decoded >= 4, 'a, b, d and e took the fast path (aedes reads through the guard)')
    assert.ok(fastCodecStats.written - before.written >= 7, 'the deliveries and PUBACKs were written by the fast path (aedes writes through the patched export)')

    // Two good PUBLISHes, then QoS 3 in the same chunk: both are delivered, then the connection ends.
    const q = await raw()
    const more = collect(sub, 2)
    const bad = publish('never')
    bad[0] |= 0x06
    q.s.write(Buffer.concat([publish('f'), publish('g'), bad, publish('never either')]))
    assert.deepEqual((await more).map((m) => m.payload.toString()), ['f', 'g'])
    if (!q.s.closed) await once(q.s, 'close')
    const late = collect(sub, 1, { timeoutMs: 300 }).then(
      (m) => m.map((x) => x.payload.toString()),
      () => [],
    )
    assert.deepEqual(await late, [], 'nothing after the bad packet was delivered')
    await sub.endAsync()
  } finally {
    for (const s of sockets) s.destroy()
    await t.stop()
  }
})

type GuardEvent = [string, unknown?]

/**
 * What a connection's parser reports for `chunks` (the first one a CONNECT, accepted before the
 * second arrives): through the packet guard with its fast path, or through the guard as it was
 * before it (frame the chunk, then hand all of it to mqtt-packet). Up to the first error or
 * refusal, after which aedes closes the connection.
 */
function guardEvents(chunks: Buffer[], fast: boolean): GuardEvent[] {
  const parser = mqttPacket.parser()
  const events: GuardEvent[] = []
  parser.on('packet', (p) => events.push(['packet', p]))
  parser.on('error', (e: Error) => events.push(['error', e.message]))
  const conn = { destroy: () => events.push(['destroy']), end: () => events.push(['end']), write: () => true }
  const client = { _parser: parser, _authorized: false, conn }
  const opts = { preConnect: 2000, connected: 400, onIssue: (i: { kind: string }) => events.push(['issue', i.kind]) }
  if (fast) {
    installPacketGuard(client as never, opts)
  } else {
    const framer = new MqttFramer()
    const parse = parser.parse.bind(parser)
    let refused = false
    parser.parse = (buf: Buffer) => {
      if (refused) return 0
      const issue = framer.feed(buf, () => (client._authorized ? opts.connected : opts.preConnect))
      if (!issue) return parse(buf)
      refused = true
      opts.onIssue(issue)
      conn.destroy()
      return 0
    }
  }
  chunks.forEach((c, i) => {
    if (i === 1) client._authorized = true
    parser.parse(c)
  })
  const stop = events.findIndex((e) => e[0] !== 'packet')
  return stop < 0 ? events : events.slice(0, stop + 1)
}

test('packet guard: with the fast path, the same packets, errors and refusals as before for random streams cut at random places (malformed packets included)', () => {
  const gen = (p: object) => mqttPacket.generate(p as mqttPacket.Packet)
  const topic = () => ['t', '', 'a/b', 'é'][int(4)]
  const kinds: (() => Buffer)[] = [
    () => gen({ cmd: 'publish', topic: topic(), payload: Buffer.alloc([0, 1, 5, 50, 300][int(5)], int(256)), qos: int(3), messageId: int(65536), retain: rand() < 0.3, dup: rand() < 0.3 }),
    () => gen({ cmd: 'publish', topic: 'x', payload: Buffer.alloc(10), qos: 0 }),
    () => gen({ cmd: 'puback', messageId: int(65536) }),
    () => gen({ cmd: 'pingreq' }),
    () => gen({ cmd: 'pubrel', messageId: int(65536) }),
    () => gen({ cmd: 'pubrec', messageId: int(65536) }),
    () => gen({ cmd: 'subscribe', messageId: 1 + int(1000), subscriptions: [{ topic: 'x', qos: 1 }] }),
    () => Buffer.from([0x40, 0x00]), // PUBACK without its id
    () => Buffer.from([0x40, 0x01, 0x07]),
    () => Buffer.from([0x32, 0x03, 0x00, 0x01, 0x74]), // QoS 1 PUBLISH without room for its id
    () => Buffer.from([0x82, 0x01, 0x00]), // SUBSCRIBE, 1 byte
    () => Buffer.from([0x30, 0x80, 0x00]), // PUBLISH, a non-minimal length 0
    () => Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]), // a 5-byte length
    () => Buffer.from([0x30, 0xff, 0x7f]), // over the `connected` limit
    () => Buffer.from([0x36, 0x02, 0x00, 0x00]), // QoS 3
    () => gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'c', keepalive: 0 }),
  ]
  const connect = gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'c', keepalive: 0 })
  const before = fastCodecStats.decoded
  let packets = 0
  for (let i = 0; i < 6000; i++) {
    // Mostly well-formed streams, one in four with anything.
    const pick = i % 4 === 0 ? kinds.length : 7
    const stream = Buffer.concat(Array.from({ length: 1 + int(8) }, () => kinds[int(pick)]()))
    const cuts = [...new Set(Array.from({ length: int(5) }, () => int(stream.length + 1)))].sort((a, b) => a - b)
    const chunks = [connect]
    let at = 0
    for (const c of [...cuts, stream.length]) {
      if (c > at) chunks.push(stream.subarray(at, c))
      at = c
    }
    const [want, got] = [guardEvents(chunks, false), guardEvents(chunks, true)]
    packets += want.length
    if (!isDeepStrictEqual(got, want)) assert.fail(`chunks ${chunks.slice(1).map((c) => c.toString('hex')).join(' | ')}\n  before: ${JSON.stringify(want)}\n  now:    ${JSON.stringify(got)}`)
  }
  assert.ok(fastCodecStats.decoded - before > 3000 && packets > 10_000, `the fast path was taken (${fastCodecStats.decoded - before} of ${packets} events)`)
})
