/**
 * The wire fuzzer (issue 15): valid packet streams generated with mqtt-packet (and valid REST
 * requests), then mutated — bit flips, truncations, length lies, interleavings, random splits —
 * and sent to a running broker's plain MQTT port, MQTT over TLS port and HTTPS REST port.
 * Seeded: the same seed and worker count send the same bytes on the same connections (how the
 * broker interleaves the workers is up to it). Used by bench/fuzz.ts (`npm run fuzz`) and, for
 * a short slice, by test/unit/fuzz.test.ts.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'

import mqttPacket from 'mqtt-packet'

import type { Hub } from '../../src/emulator/index.js'
import { buildSasToken } from '../../src/sas/index.js'
import { mulberry32 } from '../../test/helpers/prng.js'
import { remainingLength } from '../../test/helpers/raw-socket.js'

export interface FuzzTarget {
  host: string
  mqtt: number
  mqtts: number
  rest: number
  /** The fuzz device's id and SAS token (a valid CONNECT), and a service SAS for REST. */
  deviceId: string
  deviceSas: string
  serviceSas: string
  hostName: string
}

/** The target a hub offers the fuzzer: its three ports, a `fuzz` device (created here) and a service token. */
export async function fuzzTargetOf(hub: Hub, tokenSecs: number): Promise<FuzzTarget> {
  await hub.createDevice('fuzz')
  const service = hub.context.hub.policies.find((p) => p.name === 'service')!
  return {
    host: '127.0.0.1',
    mqtt: hub.ports.mqtt as number,
    mqtts: hub.ports.mqtts as number,
    rest: hub.ports.rest as number,
    deviceId: 'fuzz',
    deviceSas: await hub.sas('fuzz', undefined, { durationSecs: tokenSecs }),
    serviceSas: buildSasToken({ resource: hub.hostName, key: service.primaryKey, policyName: 'service', durationSecs: tokenSecs }),
    hostName: hub.hostName,
  }
}

export interface FuzzStats {
  cases: number
  connections: number
  byPort: { mqtt: number; mqtts: number; rest: number }
  /** Connections that did not close within the wait after this side ended them (then destroyed). */
  hung: number
}

type Rng = () => number

const int = (r: Rng, n: number) => Math.floor(r() * n)
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]


const TOPICS = [
  'devices/{id}/messages/events/',
  'devices/{id}/messages/events/a=1&b=%20x',
  '$iothub/twin/GET/?$rid=1',
  '$iothub/twin/PATCH/properties/reported/?$rid=2',
  '$iothub/methods/res/200/?$rid=3',
  'devices/{id}/messages/devicebound/#',
  '$iothub/twin/res/#',
  '$iothub/methods/POST/#',
  'fuzz/a',
  'fuzz/+/b',
  '#',
  '$SYS/x',
  '$edgemq/x/y',
  'devices/other/messages/events/',
]

function topic(r: Rng, id: string): string {
  return pick(r, TOPICS).replace('{id}', id)
}

/** One valid MQTT 3.1.1 packet (not CONNECT). */
function validPacket(r: Rng, id: string): Buffer {
  const messageId = 1 + int(r, 65535)
  switch (int(r, 10)) {
    case 0:
    case 1:
    case 2:
    case 3: {
      const qos = int(r, 3) as 0 | 1 | 2
      const payload = Buffer.alloc(int(r, 4) === 0 ? int(r, 4096) : int(r, 64), int(r, 256))
      return mqttPacket.generate({ cmd: 'publish', topic: topic(r, id).replace(/[+#]/g, 'w'), payload, qos, retain: false, dup: false, ...(qos ? { messageId } : {}) })
    }
    case 4:
      return mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: Array.from({ length: 1 + int(r, 3) }, () => ({ topic: topic(r, id), qos: int(r, 3) as 0 | 1 | 2 })) })
    case 5:
      return mqttPacket.generate({ cmd: 'unsubscribe', messageId, unsubscriptions: [topic(r, id)] })
    case 6:
      return mqttPacket.generate({ cmd: pick(r, ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const), messageId })
    case 7:
      return mqttPacket.generate({ cmd: 'pingreq' })
    case 8:
      return mqttPacket.generate({ cmd: 'disconnect' })
    default: {
      // A second CONNECT on the same connection (a protocol violation).
      return connectBytes(r, id, undefined)
    }
  }
}

function connectBytes(r: Rng, id: string, sas: string | undefined): Buffer {
  // mqtt-packet refuses to generate an empty id before 3.1.1 or with clean=false; the mutations do that.
  const clientId = int(r, 8) === 0 ? '' : id
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: clientId !== '' && int(r, 10) === 0 ? 3 : 4,
    clean: clientId === '' ? true : int(r, 2) === 0,
    clientId,
    keepalive: int(r, 120),
    username: `fuzz.azure-devices.net/${id}/?api-version=2021-04-12`,
    ...(sas ? { password: Buffer.from(sas) } : {}),
    ...(int(r, 6) === 0 ? { will: { topic: topic(r, id), payload: Buffer.alloc(int(r, 32)), qos: int(r, 2) as 0 | 1, retain: false } } : {}),
  })
}

/** A mutation of `b` (or `b` itself): bit flips, truncation, a length lie, garbage, a splice with `other`. */
function mutate(r: Rng, b: Buffer, other: Buffer): Buffer {
  const out = Buffer.from(b)
  switch (int(r, 8)) {
    case 0:
      return out // valid
    case 1:
    case 2: {
      const flips = 1 + int(r, 8)
      for (let i = 0; i < flips; i++) out[int(r, out.length)] ^= 1 << int(r, 8)
      return out
    }
    case 3:
      return out.subarray(0, int(r, out.length))
    case 4: {
      // Length lie: the same first byte and body, a remaining length that is not the body's.
      let lenBytes = 1
      while (lenBytes < 4 && (out[lenBytes] & 0x80) !== 0) lenBytes++
      const lie = pick(r, [0, 1, 2, out.length + 1 + int(r, 100), int(r, 1 << 14), 268_435_455, int(r, 268_435_456)])
      return Buffer.concat([out.subarray(0, 1), remainingLength(lie), out.subarray(1 + lenBytes)])
    }
    case 5: {
      const at = int(r, out.length + 1)
      const junk = Buffer.from(Array.from({ length: 1 + int(r, 16) }, () => int(r, 256)))
      return Buffer.concat([out.subarray(0, at), junk, out.subarray(at)])
    }
    case 6: {
      // Interleaving: another packet spliced into the middle of this one.
      const at = int(r, out.length + 1)
      return Buffer.concat([out.subarray(0, at), other, out.subarray(at)])
    }
    default: {
      // The first byte (packet type and flags) replaced.
      out[0] = int(r, 256)
      return out
    }
  }
}

/** A valid REST request over HTTP/1.1 (keep-alive), as raw bytes. */
function restRequest(r: Rng, t: FuzzTarget): Buffer {
  const json = (o: unknown) => Buffer.from(JSON.stringify(o))
  const reqs: [string, string, Buffer][] = [
    ['GET', '/edgemq/status', Buffer.alloc(0)],
    ['GET', `/twins/${t.deviceId}`, Buffer.alloc(0)],
    ['PATCH', `/twins/${t.deviceId}`, json({ properties: { desired: { k: int(r, 100) } } })],
    ['POST', `/twins/${t.deviceId}/methods`, json({ methodName: 'm', payload: {}, responseTimeoutInSeconds: 5 })],
    ['POST', `/devices/${t.deviceId}/messages/deviceBound`, Buffer.alloc(int(r, 512), 0x61)],
    ['GET', `/devices/${t.deviceId}`, Buffer.alloc(0)],
    ['GET', '/devices', Buffer.alloc(0)],
    ['PUT', '/devices/zz', json({ deviceId: 'zz' })],
    ['GET', '/edgemq/nothing/%zz', Buffer.alloc(0)],
  ]
  // Not the event stream: a fuzz case must end.
  const [method, path, body] = pick(r, reqs)
  const head = `${method} ${path}?api-version=2021-04-12 HTTP/1.1\r\nHost: ${t.hostName}\r\nAuthorization: ${int(r, 10) === 0 ? 'SharedAccessSignature sr=x&sig=y&se=1' : t.serviceSas}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
  return Buffer.concat([Buffer.from(head), body])
}

function openSocket(t: FuzzTarget, port: 'mqtt' | 'mqtts' | 'rest'): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s =
      port === 'mqtt'
        ? netConnect(t.mqtt, t.host)
        : tlsConnect({ port: port === 'mqtts' ? t.mqtts : t.rest, host: t.host, rejectUnauthorized: false, servername: 'localhost' })
    s.on('error', () => resolve(undefined))
    s.once(port === 'mqtt' ? 'connect' : 'secureConnect', () => resolve(s))
  })
}

/** Writes `bytes` in random splits (framing across reads), ends this side and waits for the close. */
async function sendAndClose(r: Rng, s: Socket, bytes: Buffer[], stats: FuzzStats): Promise<void> {
  const all = Buffer.concat(bytes)
  let at = 0
  while (at < all.length && !s.destroyed) {
    const n = int(r, 4) === 0 ? 1 + int(r, 8) : 1 + int(r, all.length)
    s.write(all.subarray(at, at + n))
    at += n
  }
  s.end()
  const closed = await new Promise<boolean>((resolve) => {
    if (s.destroyed) return resolve(true)
    const timer = setTimeout(() => resolve(false), 2000)
    s.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
    s.resume() // read (and discard) what the broker answers, so its writes never block
  })
  if (!closed) {
    stats.hung++
    s.destroy()
  }
}

/** One worker's next connection: its port and bytes, all from `r`; returns the cases it held. */
async function oneConnection(r: Rng, t: FuzzTarget, stats: FuzzStats): Promise<void> {
  const roll = r()
  const port = roll < 0.9 ? 'mqtt' : roll < 0.95 ? 'mqtts' : 'rest'
  const n = 1 + int(r, 40)
  const bytes: Buffer[] = []
  if (port === 'rest') {
    for (let i = 0; i < n; i++) bytes.push(mutate(r, restRequest(r, t), restRequest(r, t)))
  } else {
    // Most connections authenticate first, so the fuzz reaches the connected state.
    const connect = connectBytes(r, t.deviceId, int(r, 10) < 8 ? t.deviceSas : undefined)
    bytes.push(int(r, 4) === 0 ? mutate(r, connect, validPacket(r, t.deviceId)) : connect)
    for (let i = 1; i < n; i++) bytes.push(mutate(r, validPacket(r, t.deviceId), validPacket(r, t.deviceId)))
  }
  const s = await openSocket(t, port)
  stats.connections++
  stats.byPort[port] += n
  stats.cases += n
  if (!s) return
  s.on('error', () => undefined)
  await sendAndClose(r, s, bytes, stats)
}

/**
 * Runs `workers` seeded workers until `cases` cases have been sent. Worker w uses the PRNG
 * seeded with `seed * 1000 + w`.
 */
export async function fuzz(t: FuzzTarget, opts: { seed: number; cases: number; workers?: number; stats?: FuzzStats }): Promise<FuzzStats> {
  const stats = opts.stats ?? { cases: 0, connections: 0, byPort: { mqtt: 0, mqtts: 0, rest: 0 }, hung: 0 }
  const target = stats.cases + opts.cases
  const workers = opts.workers ?? 16
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const r = mulberry32(opts.seed * 1000 + w)
      while (stats.cases < target) await oneConnection(r, t, stats)
    }),
  )
  return stats
}

/**
 * Is the broker still serving? A device connects on the plain port and gets its own message
 * back, connects on the TLS port, and the REST port answers GET /edgemq/status with 200.
 * Resolves with what failed (empty: all well).
 */
export async function serving(t: FuzzTarget, timeoutMs = 10_000): Promise<string[]> {
  const { connectAsync } = await import('mqtt')
  const { request } = await import('node:https')
  const failed: string[] = []
  const opts = { clientId: `${t.deviceId}`, username: `${t.hostName}/${t.deviceId}/?api-version=2021-04-12`, password: t.deviceSas, reconnectPeriod: 0, connectTimeout: timeoutMs }
  try {
    const c = await connectAsync({ ...opts, host: t.host, port: t.mqtt, protocol: 'mqtt' })
    try {
      await c.subscribeAsync('fuzz/health', { qos: 1 })
      const got = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message back')), timeoutMs)
        c.once('message', () => (clearTimeout(timer), resolve()))
      })
      await c.publishAsync('fuzz/health', 'ok', { qos: 1 })
      await got
    } finally {
      await c.endAsync(true)
    }
  } catch (err) {
    failed.push(`mqtt: ${(err as Error).message}`)
  }
  try {
    const c = await connectAsync({ ...opts, host: t.host, port: t.mqtts, protocol: 'mqtts', rejectUnauthorized: false })
    await c.endAsync(true)
  } catch (err) {
    failed.push(`mqtts: ${(err as Error).message}`)
  }
  const status = await new Promise<number>((resolve) => {
    const req = request({ host: t.host, port: t.rest, path: '/edgemq/status', method: 'GET', rejectUnauthorized: false, headers: { authorization: t.serviceSas, host: t.hostName }, timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => resolve(0))
    req.on('timeout', () => req.destroy())
    req.end()
  })
  if (status !== 200) failed.push(`rest: status ${status}`)
  return failed
}
