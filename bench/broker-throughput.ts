// Broker throughput (issue 4): QoS0 and QoS1 msg/s, one publisher → one subscriber, 100-byte
// payloads, through edgemq (SAS auth + the seed's pub/sub policy) vs raw aedes (no auth) vs
// mosquitto (when /usr/sbin/mosquitto exists) — all in one run, alternating, several rounds;
// prints medians and the ratios edgemq/aedes and edgemq/mosquitto.
//   node --import tsx bench/broker-throughput.ts            (ROUNDS=5 QOS0_N=… QOS1_N=… to change)
//
// Fairness: every broker runs in its own child process (mosquitto has to; the node brokers do
// too, so none shares an event loop with the load generator). The load generator is MQTT.js in
// this process, identical for every broker. `--serve <kind>` is the child mode of this file.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { collectMessages, connectLocal, publishWindowed } from './lib/load.js'
import { fromDist, median, startBroker as startLibBroker } from './lib/brokers.js'
import { REPO_ROOT, SEED_FIXTURES } from '../test/helpers/paths.js'

const here = fileURLToPath(import.meta.url)
const MOSQUITTO = '/usr/sbin/mosquitto'
const TOPIC = 'test_topic'
const PAYLOAD = Buffer.alloc(100, 0x78)

interface Creds {
  clientId: string
  username?: string
  password?: string
}
interface Ready {
  port: number
  pub: Creds
  sub: Creds
}

// ---------------------------------------------------------------- child mode: one broker

async function serve(kind: string): Promise<void> {
  if (kind === 'aedes') {
    // Raw aedes as a user gets it out of the box: defaults, no authentication, memory persistence.
    const { Aedes } = await import('aedes')
    const aedes = await Aedes.createBroker()
    const server = createServer((s) => aedes.handle(s))
    server.listen(0, '127.0.0.1', () => {
      const ready: Ready = { port: (server.address() as AddressInfo).port, pub: { clientId: 'pub_client' }, sub: { clientId: 'sub_client' } }
      console.log(JSON.stringify(ready))
    })
    return
  }
  // edgemq: the real broker assembly (authenticate → policy → IoT Hub handlers), in-memory hub.
  const { openHub } = await fromDist<typeof import('../src/config/home.js')>('config/home.js')
  const { startEdgeBroker } = await fromDist<typeof import('../src/broker/broker.js')>('broker/broker.js')
  const { parseEdgeHubFile, setEdgeHubDesired } = await fromDist<typeof import('../src/service/edgehub.js')>('service/edgehub.js')
  const home = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-'))
  const onDisk = kind === 'edgemq-disk'
  const ctx = await openHub({ home, inMemory: !onDisk, createDefault: true })
  for (const deviceId of ['pub_client', 'sub_client']) await ctx.registry.createDevice({ deviceId })
  await setEdgeHubDesired(ctx, parseEdgeHubFile(path.join(SEED_FIXTURES, 'seed-policy-pubsub.json')))
  const broker = await startEdgeBroker({ home, context: onDisk ? undefined : ctx, inMemory: !onDisk, port: 0, tlsPort: null, logLevel: 'warn', writeRuntimeFile: false })
  const creds = async (d: string): Promise<Creds> => ({
    clientId: d,
    username: `${ctx.hub.hostName}/${d}/?api-version=2018-06-30`,
    password: await ctx.registry.sasToken(d, undefined, { durationSecs: 3600 }),
  })
  const ready: Ready = { port: broker.ports.mqtt as number, pub: await creds('pub_client'), sub: await creds('sub_client') }
  if (onDisk) await ctx.close()
  console.log(JSON.stringify(ready))
  process.once('SIGTERM', () => {
    void broker.close().finally(() => {
      rmSync(home, { recursive: true, force: true })
      process.exit(0)
    })
  })
}

// ---------------------------------------------------------------- parent: brokers as children

interface RunningBroker {
  name: string
  ready: Ready
  child: ChildProcess
  cleanup?: () => void
}

function readyLine(child: ChildProcess, name: string): Promise<Ready> {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        resolve(JSON.parse(l) as Ready)
      } catch {
        /* not the ready line */
      }
    })
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)))
  })
}

async function startNode(kind: string): Promise<RunningBroker> {
  const child = spawn(process.execPath, ['--import', 'tsx', here, '--serve', kind], { stdio: ['ignore', 'pipe', 'inherit'], cwd: REPO_ROOT })
  return { name: kind, ready: await readyLine(child, kind), child }
}


/** mosquitto as bench/lib/brokers.ts starts it (unbounded queues, no persistence, no auth). */
async function startMosquitto(): Promise<RunningBroker> {
  const m = await startLibBroker('mosquitto')
  return { name: 'mosquitto', ready: { port: m.port, pub: { clientId: 'pub_client' }, sub: { clientId: 'sub_client' } }, child: m.child, cleanup: m.cleanup }
}

async function stopBroker(b: RunningBroker): Promise<void> {
  if (b.child.exitCode === null) {
    const exited = new Promise((r) => b.child.once('exit', r))
    b.child.kill('SIGTERM')
    await exited
  }
  b.cleanup?.()
}

// ---------------------------------------------------------------- load generator

const client = connectLocal

interface Result {
  rate: number
  received: number
}

/** One publisher → one subscriber; `window` publishes in flight (QoS1: awaiting PUBACK; QoS0: awaiting the socket write). */
async function measure(ready: Ready, qos: 0 | 1, n: number, window: number): Promise<Result> {
  const sub = await client(ready.port, ready.sub)
  await sub.subscribeAsync(TOPIC, { qos })
  const pub = await client(ready.port, ready.pub)
  const t0 = performance.now()
  const col = collectMessages(sub, n)
  await publishWindowed(pub, TOPIC, PAYLOAD, qos, n, window)
  await col.done
  const received = col.received()
  const lastAt = col.lastAt()
  const secs = ((lastAt || performance.now()) - t0) / 1000
  await Promise.all([pub.endAsync(), sub.endAsync()])
  return { rate: received / secs, received }
}


async function main(): Promise<void> {
  const rounds = Number(process.env.ROUNDS ?? 5)
  const n = { 0: Number(process.env.QOS0_N ?? 50_000), 1: Number(process.env.QOS1_N ?? 20_000) }
  const window = { 0: 1000, 1: 1000 }
  const kinds = ['edgemq', 'aedes', 'edgemq-disk', ...(existsSync(MOSQUITTO) ? ['mosquitto'] : [])]
  console.log(`broker throughput: 1 publisher → 1 subscriber, ${PAYLOAD.length}-byte payloads, topic ${TOPIC}`)
  console.log(`  QoS0 ${n[0]} msgs, QoS1 ${n[1]} msgs per run, ${window[1]} publishes in flight; ${rounds} rounds, brokers alternating`)
  console.log('  every broker in its own child process; load generator (MQTT.js) in this process')
  console.log('  edgemq = SAS auth + seed pub/sub policy, in-memory hub; edgemq-disk = same on a home with LevelDB persistence')
  console.log('  aedes = Aedes.createBroker() defaults, no auth' + (kinds.includes('mosquitto') ? '; mosquitto = 2.x, no auth, unbounded queues' : '; mosquitto not installed'))
  const brokers: RunningBroker[] = []
  try {
    for (const k of kinds) brokers.push(k === 'mosquitto' ? await startMosquitto() : await startNode(k))
    // Warm-up (JIT, connection paths) — not counted.
    for (const b of brokers) for (const q of [0, 1] as const) await measure(b.ready, q, Math.min(5000, n[q]), window[q])
    const results = new Map<string, number[]>()
    for (let r = 0; r < rounds; r++) {
      // Alternate the order each round so no broker always runs first or last.
      const order = [...brokers.slice(r % brokers.length), ...brokers.slice(0, r % brokers.length)]
      const line: string[] = []
      for (const q of [0, 1] as const) {
        for (const b of order) {
          const res = await measure(b.ready, q, n[q], window[q])
          const key = `${b.name}/qos${q}`
          results.set(key, [...(results.get(key) ?? []), res.rate])
          line.push(`${key} ${Math.round(res.rate)}${res.received < n[q] ? ` (${res.received}/${n[q]} received)` : ''}`)
        }
      }
      console.log(`  round ${r + 1}: ${line.join(', ')}`)
    }
    console.log('\nmedian msg/s')
    console.log(`  ${'broker'.padEnd(14)}${'QoS0'.padStart(10)}${'QoS1'.padStart(10)}`)
    for (const b of brokers) {
      const q0 = median(results.get(`${b.name}/qos0`) ?? [0])
      const q1 = median(results.get(`${b.name}/qos1`) ?? [0])
      console.log(`  ${b.name.padEnd(14)}${Math.round(q0).toString().padStart(10)}${Math.round(q1).toString().padStart(10)}`)
    }
    const ratio = (a: string, b: string, q: number) => (median(results.get(`${a}/qos${q}`) ?? [0]) / median(results.get(`${b}/qos${q}`) ?? [1])).toFixed(2)
    console.log('\nratios (median/median; goal edgemq/aedes ≥ 0.8)')
    for (const [a, b] of [['edgemq', 'aedes'], ['edgemq-disk', 'aedes'], ...(kinds.includes('mosquitto') ? [['edgemq', 'mosquitto']] : [])]) {
      console.log(`  ${`${a}/${b}`.padEnd(22)} QoS0 ${ratio(a, b, 0)}×   QoS1 ${ratio(a, b, 1)}×`)
    }
  } finally {
    for (const b of brokers) await stopBroker(b)
  }
}

const serveAt = process.argv.indexOf('--serve')
if (serveAt >= 0) await serve(process.argv[serveAt + 1])
else await main()
