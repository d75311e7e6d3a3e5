/**
 * The benchmark suite (issue 9): edgemq vs raw aedes vs mosquitto, side by side in one run,
 * alternating brokers every round, with a warm-up; prints medians, spread and the ratios
 * edgemq/aedes and edgemq/mosquitto.
 *   1. QoS0 / QoS1, 1 publisher → 1 subscriber, 100-byte payloads
 *   2. fan-in: 100 publishers → 1 subscriber on a wildcard
 *   3. fan-out: 1 publisher → 100 subscribers
 *   4. connect storm: CONNECT→CONNACK per second (edgemq: SAS verified; others: no auth)
 *   5. 10,000 idle connections: broker RSS per connection
 *   6. latency p50/p99 at a fixed moderate rate (QoS1)
 * edgemq runs the product users run: SAS authentication and the seed's pub/sub policy (plus one
 * statement granting the bench's own `bench/#` topics to every identity).
 *   node --import tsx bench/suite.ts [--json] [--rounds 3] [--only fanin,latency]
 */
import { connect as netConnect, type Socket } from 'node:net'

import mqttPacket from 'mqtt-packet'

import {
  availableKinds,
  connectClient,
  credentials,
  median,
  percentile,
  rssOf,
  startBroker,
  stopBroker,
  type BrokerKind,
  type RunningBroker,
} from './lib/brokers.js'

const args = process.argv.slice(2)
const JSON_OUT = args.includes('--json')
const ROUNDS = Number(args[args.indexOf('--rounds') + 1] || 3) || 3
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined
const IDLE = Number(process.env.IDLE_CONNECTIONS ?? 10_000)
const PAYLOAD = Buffer.alloc(100, 0x78)

const log = (s: string) => {
  if (!JSON_OUT) console.log(s)
}

interface PubSubSpec {
  publishers: number
  subscribers: number
  qos: 0 | 1
  /** Messages per publisher. */
  perPublisher: number
  /** Publishes in flight per publisher. */
  window: number
  pubTopic: (i: number) => string
  filter: string
  /** 1→1 uses the seed's own clients and topic. */
  seedClients?: boolean
}

/** Deliveries per second (fan-out counts each copy). */
async function pubsub(b: RunningBroker, spec: PubSubSpec): Promise<number> {
  const subIds = spec.seedClients ? ['sub_client'] : Array.from({ length: spec.subscribers }, (_, i) => `dev${spec.publishers + i}`)
  const pubIds = spec.seedClients ? ['pub_client'] : Array.from({ length: spec.publishers }, (_, i) => `dev${i}`)
  const subs = await Promise.all(subIds.map((id) => connectClient(b, id)))
  await Promise.all(subs.map((s) => s.subscribeAsync(spec.filter, { qos: spec.qos })))
  const pubs = await Promise.all(pubIds.map((id) => connectClient(b, id)))
  const expected = spec.publishers * spec.perPublisher * spec.subscribers
  let received = 0
  let last = 0
  const t0 = performance.now()
  const done = new Promise<void>((resolve) => {
    let idle = setTimeout(resolve, 15_000)
    for (const s of subs) {
      s.on('message', () => {
        received++
        last = performance.now()
        if (received >= expected) {
          clearTimeout(idle)
          resolve()
        } else if ((received & 1023) === 0) {
          clearTimeout(idle)
          idle = setTimeout(resolve, 3000) // QoS0 may drop under load: stop when nothing arrives
        }
      })
    }
  })
  await Promise.all(
    pubs.map(
      (p, pi) =>
        new Promise<void>((resolve, reject) => {
          let sent = 0
          let inflight = 0
          const topic = spec.pubTopic(pi)
          const pump = () => {
            while (inflight < spec.window && sent < spec.perPublisher) {
              inflight++
              sent++
              p.publish(topic, PAYLOAD, { qos: spec.qos }, (err) => {
                if (err) return reject(err)
                inflight--
                if (sent < spec.perPublisher) pump()
                else if (inflight === 0) resolve()
              })
            }
          }
          pump()
        }),
    ),
  )
  await done
  const rate = received / (((last || performance.now()) - t0) / 1000)
  await Promise.all([...pubs, ...subs].map((c) => c.endAsync()))
  return rate
}

function connectPacket(b: RunningBroker, clientId: string): Buffer {
  const o = credentials(b, clientId)
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive: 0,
    ...(o.username ? { username: o.username, password: Buffer.from(String(o.password)) } : {}),
  })
}

/** Opens a raw socket, sends CONNECT, resolves on CONNACK 0 (rejects otherwise). */
function rawConnect(port: number, packet: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => s.write(packet))
    s.once('data', (d) => {
      if (d[0] === 0x20 && d[3] === 0) resolve(s)
      else {
        s.destroy()
        reject(new Error(`CONNACK ${d[3]}`))
      }
    })
    s.once('error', reject)
  })
}

/** Connections per second with `concurrency` at a time, each closed after its CONNACK. */
async function connectStorm(b: RunningBroker, total: number, concurrency: number): Promise<number> {
  const packets = Array.from({ length: total }, (_, i) => connectPacket(b, `dev${i % IDLE}`))
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const s = await rawConnect(b.port, packets[next++])
        s.destroy()
      }
    }),
  )
  return total / ((performance.now() - t0) / 1000)
}

/** RSS growth per idle connection, in bytes. */
async function idleConnections(b: RunningBroker, n: number): Promise<{ perConn: number; ok: number }> {
  const packets = Array.from({ length: n }, (_, i) => connectPacket(b, `dev${i}`))
  const before = rssOf(b.pid)
  const sockets: Socket[] = []
  let next = 0
  let failed = 0
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < n) {
        const p = packets[next++]
        try {
          sockets.push(await rawConnect(b.port, p))
        } catch {
          failed++
        }
      }
    }),
  )
  // Let the broker settle (lazy allocations, GC) before reading RSS.
  await new Promise((r) => setTimeout(r, 1500))
  const after = rssOf(b.pid)
  for (const s of sockets) s.destroy()
  await new Promise((r) => setTimeout(r, 500))
  return { perConn: (after - before) / Math.max(1, sockets.length), ok: sockets.length + 0 * failed }
}

/** Latency of QoS1 messages at a fixed rate (msg/s) for `secs`. */
async function latency(b: RunningBroker, rate: number, secs: number): Promise<{ p50: number; p99: number }> {
  const sub = await connectClient(b, 'sub_client')
  await sub.subscribeAsync('test_topic', { qos: 1 })
  const pub = await connectClient(b, 'pub_client')
  const lat: number[] = []
  const total = rate * secs
  const got = new Promise<void>((resolve) => {
    const idle = setTimeout(resolve, secs * 1000 + 5000)
    sub.on('message', (_t, payload) => {
      lat.push(performance.now() - payload.readDoubleLE(0))
      if (lat.length >= total) {
        clearTimeout(idle)
        resolve()
      }
    })
  })
  const start = performance.now()
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    const p = Buffer.alloc(100)
    p.writeDoubleLE(performance.now(), 0)
    pub.publish('test_topic', p, { qos: 1 })
  }
  await got
  await Promise.all([pub.endAsync(), sub.endAsync()])
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) }
}

interface Scenario {
  name: string
  unit: string
  /** Higher is better? */
  higher: boolean
  run: (b: RunningBroker) => Promise<number>
  rounds?: number
}

const scenarios: Scenario[] = [
  { name: 'qos0 1→1', unit: 'msg/s', higher: true, run: (b) => pubsub(b, { publishers: 1, subscribers: 1, qos: 0, perPublisher: 50_000, window: 1000, pubTopic: () => 'test_topic', filter: 'test_topic', seedClients: true }) },
  { name: 'qos1 1→1', unit: 'msg/s', higher: true, run: (b) => pubsub(b, { publishers: 1, subscribers: 1, qos: 1, perPublisher: 20_000, window: 1000, pubTopic: () => 'test_topic', filter: 'test_topic', seedClients: true }) },
  { name: 'fan-in 100→1 qos1', unit: 'msg/s', higher: true, run: (b) => pubsub(b, { publishers: 100, subscribers: 1, qos: 1, perPublisher: 200, window: 20, pubTopic: (i) => `bench/${i}`, filter: 'bench/#' }) },
  { name: 'fan-out 1→100 qos0', unit: 'deliveries/s', higher: true, run: (b) => pubsub(b, { publishers: 1, subscribers: 100, qos: 0, perPublisher: 500, window: 100, pubTopic: () => 'bench/x', filter: 'bench/x' }) },
  { name: 'connect storm', unit: 'conn/s', higher: true, run: (b) => connectStorm(b, 5000, 200) },
  { name: 'latency p99 @2k/s qos1', unit: 'ms', higher: false, run: async (b) => (await latency(b, 2000, 3)).p99 },
  { name: 'latency p50 @2k/s qos1', unit: 'ms', higher: false, run: async (b) => (await latency(b, 2000, 3)).p50 },
]

async function main(): Promise<void> {
  const kinds = availableKinds()
  log(`edgemq benchmark suite: ${kinds.join(' vs ')}; ${ROUNDS} rounds, alternating; every broker in its own process, the load generator (MQTT.js / raw sockets) in this one`)
  log('edgemq = SAS auth + seed pub/sub policy (+ bench/# for every identity), in-memory hub; aedes = createBroker() defaults; mosquitto = 2.x, no auth')
  const brokers: RunningBroker[] = []
  const results: Record<string, Record<string, number[]>> = {}
  try {
    for (const k of kinds) brokers.push(await startBroker(k, { devices: IDLE }))
    // Warm-up: one short pass of the cheap scenarios on every broker.
    for (const b of brokers) {
      await pubsub(b, { publishers: 1, subscribers: 1, qos: 1, perPublisher: 3000, window: 500, pubTopic: () => 'test_topic', filter: 'test_topic', seedClients: true })
      await connectStorm(b, 300, 20)
    }
    for (const sc of scenarios.filter((s) => !ONLY || ONLY.some((o) => s.name.includes(o)))) {
      results[sc.name] = {}
      for (let r = 0; r < (sc.rounds ?? ROUNDS); r++) {
        const order = [...brokers.slice(r % brokers.length), ...brokers.slice(0, r % brokers.length)]
        for (const b of order) (results[sc.name][b.kind] ??= []).push(await sc.run(b))
      }
      const row = kinds.map((k) => `${k} ${fmt(median(results[sc.name][k]))} (±${fmt(spread(results[sc.name][k]))})`).join('  ')
      log(`  ${sc.name.padEnd(24)} ${sc.unit.padEnd(13)} ${row}   ${ratios(sc, results[sc.name])}`)
    }
    if (!ONLY || ONLY.includes('idle')) {
      results.idle = {}
      for (const b of brokers) {
        const r = await idleConnections(b, IDLE)
        results.idle[b.kind] = [r.perConn]
      }
      log(`  ${`${IDLE} idle connections`.padEnd(24)} ${'bytes/conn'.padEnd(13)} ${kinds.map((k) => `${k} ${fmt(results.idle[k][0])}`).join('  ')}   (goal edgemq ≤ 60 KB)`)
    }
    const mq = results['qos0 1→1']?.mosquitto
    if (mq) log(`load generator check: it drove mosquitto at ${fmt(median(mq))} msg/s (QoS0 1→1), so figures below that for aedes/edgemq are broker-bound, not generator-bound`)
    if (JSON_OUT) console.log(JSON.stringify({ rounds: ROUNDS, idleConnections: IDLE, results }, null, 2))
  } finally {
    for (const b of brokers) await stopBroker(b)
  }
}

function fmt(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2)
}

function spread(xs: number[]): number {
  return xs.length < 2 ? 0 : (Math.max(...xs) - Math.min(...xs)) / 2
}

function ratios(sc: Scenario, r: Record<string, number[]>): string {
  const e = median(r.edgemq ?? [])
  const parts: string[] = []
  for (const k of ['aedes', 'mosquitto'] as BrokerKind[]) {
    if (!r[k]) continue
    const other = median(r[k])
    // For latency, report how many times slower edgemq is (goal ≤ 2× aedes).
    parts.push(sc.higher ? `edgemq/${k} ${(e / other).toFixed(2)}×` : `edgemq/${k} ${(e / other).toFixed(2)}× (lower is better)`)
  }
  return parts.join(', ')
}

await main()
