// Policy cost on the broker's hot path (issue 5): msg/s through edgemq, 1 publisher → 1 subscriber,
// QoS0 and QoS1, 100-byte payloads, under different $edgeHub policies — all in one run, rounds
// alternating, medians and ratios against the no-policy baseline — plus decide() ns/op.
//   node --import tsx bench/policy-throughput.ts        (ROUNDS=5 QOS0_N=30000 QOS1_N=10000 to change)
//
// Variants — the SAME broker build (SAS auth, IoT Hub topic handling, aedes), in-memory hubs,
// pub_client → sub_client on test_topic; only the policy differs:
//   none    no policy cost at all: the broker's policy replaced by a stub whose every answer is a
//           constant "allow" (edgemq with no $edgeHub policy refuses every client, so "without
//           policy" has to mean "policy decisions cost nothing" — this is the baseline).
//   seed    the seed's seed-policy-pubsub.json, verbatim (3 statements, exact-id statements).
//   wide    one {{iot:identity}} statement allowing publish + subscribe on "#" (what a user writes
//           for "allow everything": the shared-trie path for variable statements).
//   big     1,000 statements that all apply to both clients, test_topic allowed by the LAST one.
// Decisions are cached per session and topic, so after the first message every variant costs a
// Map lookup; the ratios show whether anything else on the path depends on the policy.
//
// Brokers run in this process (startEdgeBroker + openHub({inMemory}) + setEdgeHubDesired), as does
// the MQTT.js load generator: each variant shares the event loop with the same load, so the
// comparison between variants is fair (absolute figures are lower than with a broker process of
// its own: see bench/broker-throughput.ts for those).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { collectMessages, connectLocal, publishWindowed } from './lib/load.js'

import { startEdgeBroker, type EdgeBroker } from '../src/broker/broker.js'
import { openHub, type HubContext } from '../src/config/home.js'
import { compilePolicy, identityFromClientId, type AuthorizationStatement, type CompiledPolicy, type Decision, type JsonObject } from '../src/policy/index.js'
import { parseEdgeHubFile, setEdgeHubDesired } from '../src/service/edgehub.js'
import { median } from './lib/brokers.js'
import { SEED_FIXTURES } from '../test/helpers/paths.js'

const SEED_PUBSUB = path.join(SEED_FIXTURES, 'seed-policy-pubsub.json')
const TOPIC = 'test_topic'
const PAYLOAD = Buffer.alloc(100, 0x78)

// ---------------------------------------------------------------- policies

function desired(authorizations: AuthorizationStatement[]): JsonObject {
  return { schemaVersion: '1.2', mqttBroker: { authorizations } } as unknown as JsonObject
}

const WIDE: AuthorizationStatement[] = [
  { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] },
]

/** 1,000 statements, all applying to every client; only the last one allows test_topic. */
function bigStatements(): AuthorizationStatement[] {
  const s: AuthorizationStatement[] = [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }]
  for (let i = 1; i < 999; i++) {
    s.push({
      description: `site ${i}`,
      identities: i % 2 === 0 ? ['{{iot:identity}}'] : ['{{iot:device_id}}', 'pub_client', 'sub_client'],
      deny: [{ operations: ['mqtt:publish'], resources: [`site/${i}/secret/#`] }],
      allow: [
        { operations: ['mqtt:publish'], resources: [`site/${i}/+/telemetry`, `{{iot:device_id}}/s${i}/#`] },
        { operations: ['mqtt:subscribe'], resources: [`site/${i}/#`, `test_topic/${i}`] },
      ],
    })
  }
  s.push({ description: 'the pair', identities: ['pub_client', 'sub_client'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: [TOPIC] }] })
  return s
}

const ALLOW: Decision = { decision: 'allow', statement: null, reason: 'no policy (benchmark baseline)' }
/** The "no policy" stub: what the broker calls on a CompiledPolicy and its per-client views, all constant. */
const NO_POLICY = {
  forIdentity: () => ({
    canConnect: () => true,
    canPublish: () => true,
    canSubscribe: () => true,
    decide: () => ALLOW,
    decidePublish: () => ALLOW,
    decideSubscribe: () => ALLOW,
  }),
  decide: () => ALLOW,
} as unknown as CompiledPolicy

// ---------------------------------------------------------------- brokers

interface Creds {
  clientId: string
  username: string
  password: string
}
interface Variant {
  name: string
  broker: EdgeBroker
  ctx: HubContext
  home: string
  pub: Creds
  sub: Creds
}

async function startVariant(name: string, patch: JsonObject | 'none'): Promise<Variant> {
  const home = mkdtempSync(path.join(tmpdir(), `edgemq-bench-${name}-`))
  const ctx = await openHub({ home, inMemory: true, createDefault: true })
  for (const deviceId of ['pub_client', 'sub_client']) await ctx.registry.createDevice({ deviceId })
  // The baseline still needs a document that lets the clients connect; its policy is then swapped.
  await setEdgeHubDesired(ctx, patch === 'none' ? desired(WIDE) : patch)
  const broker = await startEdgeBroker({ home, context: ctx, inMemory: true, port: 0, tlsPort: null, logLevel: 'warn', writeRuntimeFile: false })
  if (patch === 'none') broker.live.edgeHub = { ...broker.live.edgeHub, policy: NO_POLICY }
  const creds = async (d: string): Promise<Creds> => ({
    clientId: d,
    username: `${ctx.hub.hostName}/${d}/?api-version=2018-06-30`,
    password: await ctx.registry.sasToken(d, undefined, { durationSecs: 3600 }),
  })
  return { name, broker, ctx, home, pub: await creds('pub_client'), sub: await creds('sub_client') }
}

async function stopVariant(v: Variant): Promise<void> {
  await v.broker.close()
  await v.ctx.close()
  rmSync(v.home, { recursive: true, force: true })
}

// ---------------------------------------------------------------- load generator (as bench/broker-throughput.ts)

const client = connectLocal

interface Result {
  /** msg/s by the wall clock. */
  rate: number
  /** msg per CPU-second of this process (broker + load generator): robust to other load on the machine. */
  cpuRate: number
  received: number
}

/** One publisher → one subscriber; `window` publishes in flight (QoS1: awaiting PUBACK; QoS0: awaiting the socket write). */
async function measure(v: Variant, qos: 0 | 1, n: number, window: number): Promise<Result> {
  const port = v.broker.ports.mqtt as number
  const sub = await client(port, v.sub)
  const granted = await sub.subscribeAsync(TOPIC, { qos })
  if (granted[0]?.qos !== qos) throw new Error(`${v.name}: SUBSCRIBE ${TOPIC} not granted (${JSON.stringify(granted)})`)
  const pub = await client(port, v.pub)
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const col = collectMessages(sub, n)
  pub.once('close', () => {
    if (col.received() < n) console.error(`${v.name}: the publisher was disconnected (denied?) after ${col.received()} messages`)
  })
  await publishWindowed(pub, TOPIC, PAYLOAD, qos, n, window)
  await col.done
  const received = col.received()
  const lastAt = col.lastAt()
  const secs = ((lastAt || performance.now()) - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await Promise.all([pub.endAsync(), sub.endAsync()])
  return { rate: received / secs, cpuRate: received / ((cpu.user + cpu.system) / 1e6), received }
}


// ---------------------------------------------------------------- decide() ns/op

let sink = 0
/** CPU ns per call (process.cpuUsage, not the wall clock: the machine may be busy with other work). */
function nsPerOp(iterations: number, fn: () => boolean, warm = 20_000): number {
  for (let i = 0; i < warm; i++) sink += fn() ? 1 : 0
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < iterations; i++) sink += fn() ? 1 : 0
  const cpu = process.cpuUsage(cpu0)
  return ((cpu.user + cpu.system) * 1000) / iterations
}

function decideFigures(): void {
  const seedDoc = parseEdgeHubFile(SEED_PUBSUB) as unknown as { mqttBroker: { authorizations: AuthorizationStatement[] } }
  const seed = compilePolicy(seedDoc.mqttBroker.authorizations)
  const big = compilePolicy(bigStatements())
  const pub = identityFromClientId('pub_client')
  const sub = identityFromClientId('sub_client')
  const seedView = seed.forIdentity(pub)
  const bigView = big.forIdentity(pub)
  const N = 2_000_000
  let fresh = 0
  const rows: [string, number][] = [
    ['seed pubsub: view.canPublish("test_topic")            cached (the broker path)', nsPerOp(N, () => seedView.canPublish(TOPIC))],
    ['seed pubsub: policy.decide(pub_client, publish, …)    cached', nsPerOp(N, () => seed.decide(pub, 'publish', TOPIC).decision === 'allow')],
    ['seed pubsub: policy.decide(sub_client, subscribe, …)  cached', nsPerOp(N, () => seed.decide(sub, 'subscribe', TOPIC).decision === 'allow')],
    ['1,000 stmts: view.canPublish("test_topic")            cached (the broker path)', nsPerOp(N, () => bigView.canPublish(TOPIC))],
    ['1,000 stmts: policy.decide(pub_client, publish, …)    cached', nsPerOp(N, () => big.decide(pub, 'publish', TOPIC).decision === 'allow')],
    ['1,000 stmts: fresh view + canPublish (a new client connects, uncached)', nsPerOp(300, () => big.forIdentity(identityFromClientId(`c${fresh++}`)).canPublish(TOPIC), 50)],
  ]
  console.log('decide() cost, CPU ns/op (goal < 2 µs per cached decision; bench/policy-decide.ts has the full table)')
  for (const [name, ns] of rows) console.log(`  ${name.padEnd(80)} ${ns.toFixed(ns < 10 ? 2 : 0).padStart(9)} ns/op`)
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const rounds = Number(process.env.ROUNDS ?? 5)
  const n = { 0: Number(process.env.QOS0_N ?? 30_000), 1: Number(process.env.QOS1_N ?? 10_000) }
  const window = 1000
  decideFigures()
  console.log(`\nbroker throughput by policy: 1 publisher → 1 subscriber, ${PAYLOAD.length}-byte payloads, topic ${TOPIC}`)
  console.log(`  QoS0 ${n[0]} msgs, QoS1 ${n[1]} msgs per run, ${window} publishes in flight; ${rounds} rounds, variants alternating`)
  console.log('  none = policy stubbed to constant allow (baseline); seed = seed-policy-pubsub.json; wide = {{iot:identity}} allow "#"; big = 1,000 statements')
  const variants: Variant[] = []
  try {
    variants.push(await startVariant('none', 'none'))
    variants.push(await startVariant('seed', parseEdgeHubFile(SEED_PUBSUB)))
    variants.push(await startVariant('wide', desired(WIDE)))
    variants.push(await startVariant('big', desired(bigStatements())))
    // Warm-up (JIT, connection paths, decision caches) — not counted.
    for (const v of variants) for (const q of [0, 1] as const) await measure(v, q, Math.min(5000, n[q]), window)
    const results = new Map<string, number[]>()
    const cpuResults = new Map<string, number[]>()
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so no variant always runs first or last.
      const order = [...variants.slice(r % variants.length), ...variants.slice(0, r % variants.length)]
      const line: string[] = []
      for (const q of [0, 1] as const) {
        for (const v of order) {
          const res = await measure(v, q, n[q], window)
          const key = `${v.name}/qos${q}`
          results.set(key, [...(results.get(key) ?? []), res.rate])
          cpuResults.set(key, [...(cpuResults.get(key) ?? []), res.cpuRate])
          line.push(`${key} ${Math.round(res.rate)} (${Math.round(res.cpuRate)}/cpu-s)${res.received < n[q] ? ` (${res.received}/${n[q]} received)` : ''}`)
        }
      }
      console.log(`  round ${r + 1}: ${line.join(', ')}`)
    }
    const table = (title: string, res: Map<string, number[]>): number => {
      const med = (name: string, q: number) => median(res.get(`${name}/qos${q}`) ?? [0])
      console.log(`\n${title}, and ratio to "none" (goal ≥ 0.90×)`)
      console.log(`  ${'policy'.padEnd(8)}${'QoS0'.padStart(10)}${'×'.padStart(8)}${'QoS1'.padStart(10)}${'×'.padStart(8)}`)
      let worst = Infinity
      for (const v of variants) {
        const r0 = med(v.name, 0) / med('none', 0)
        const r1 = med(v.name, 1) / med('none', 1)
        if (v.name !== 'none') worst = Math.min(worst, r0, r1)
        console.log(`  ${v.name.padEnd(8)}${Math.round(med(v.name, 0)).toString().padStart(10)}${r0.toFixed(2).padStart(8)}${Math.round(med(v.name, 1)).toString().padStart(10)}${r1.toFixed(2).padStart(8)}`)
      }
      return worst
    }
    const wall = table('median msg/s (wall clock)', results)
    const cpu = table('median msg per CPU-second (broker + load generator; insensitive to other load on the machine)', cpuResults)
    console.log(`\nworst policy/none ratio: ${cpu.toFixed(2)}× by CPU, ${wall.toFixed(2)}× by wall clock — ${cpu >= 0.9 ? 'meets' : 'BELOW'} the 0.90× goal (judged by CPU)`)
  } finally {
    for (const v of variants) await stopVariant(v)
  }
  if (sink < 0) console.log(sink)
}

await main()
