// Cluster throughput (issue 8): fan-in — many publishers, one subscriber on `bench/#`, QoS 1,
// 100-byte payloads — through real `edgemq broker start` processes:
//   embedded   one node, SQLite registry + LevelDB MQTT persistence (the default)
//   redis x1   one cluster node on a private redis-server (registry, bus and MQTT state in Redis)
//   redis x2   two cluster nodes; publishers alternate between them, the subscriber is on node A,
//              so half the messages cross nodes through Redis pub/sub
// Each scenario runs ROUNDS times (alternating), medians are printed. The load generator is
// MQTT.js in this process. On a 2-core machine the brokers, redis-server and the load generator
// share the same two cores: read the figures as "cost of the Redis path", not as scale-out.
//   node --import tsx bench/cluster.ts        (ROUNDS=3 PUBLISHERS=20 PER_PUB=500 to change)
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'

import { connect as mqttConnect, type MqttClient } from 'mqtt'

import { initHub } from '../src/config/home.js'
import type { JsonObject } from '../src/policy/index.js'
import { setEdgeHubDesired } from '../src/service/edgehub.js'
import { BIN } from '../test/helpers/paths.js'
import { freePort } from '../test/helpers/ports.js'
import { median } from './lib/brokers.js'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const PUBLISHERS = Number(process.env.PUBLISHERS ?? 20)
const PER_PUB = Number(process.env.PER_PUB ?? 500)
const PAYLOAD = Buffer.alloc(100, 0x78)
const OPEN: JsonObject = {
  schemaVersion: '1.2',
  mqttBroker: {
    authorizations: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] }],
  },
}


function waitLine(proc: ChildProcess, stream: 'stdout' | 'stderr', re: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc[stream]! })
    rl.on('line', (l) => {
      if (re.test(l)) resolve(l)
    })
    proc.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)))
  })
}

interface Node {
  proc: ChildProcess
  port: number
}

async function startNode(home: string): Promise<Node> {
  const proc = spawn(process.execPath, [BIN, 'broker', 'start', '--home', home, '--port', '0', '--no-tls', '-o', 'json', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const line = await waitLine(proc, 'stdout', /"event":"ready"/, 'broker')
  return { proc, port: (JSON.parse(line) as { ports: { mqtt: number } }).ports.mqtt }
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const done = new Promise((r) => proc.once('exit', r))
  proc.kill('SIGTERM')
  await done
}

interface Hub {
  homes: string[]
  creds: Map<string, { username: string; password: string }>
}

async function makeHub(homes: string[], storeUrl: string | undefined, devices: string[]): Promise<Hub> {
  const ctx = await initHub(homes[0], { name: 'benchhub', storeUrl })
  const creds = new Map<string, { username: string; password: string }>()
  try {
    for (const d of devices) {
      await ctx.registry.createDevice({ deviceId: d })
      creds.set(d, { username: `${ctx.hub.hostName}/${d}/?api-version=2018-06-30`, password: await ctx.registry.sasToken(d, undefined, { durationSecs: 7200 }) })
    }
    await setEdgeHubDesired(ctx, OPEN)
  } finally {
    await ctx.close()
  }
  for (const h of homes.slice(1)) await (await initHub(h, { name: 'benchhub', storeUrl })).close()
  return { homes, creds }
}

function client(port: number, id: string, hub: Hub): Promise<MqttClient> {
  const c = hub.creds.get(id) as { username: string; password: string }
  const m = mqttConnect({ host: '127.0.0.1', port, clientId: id, username: c.username, password: c.password, reconnectPeriod: 0, protocolVersion: 4 })
  return new Promise((resolve, reject) => {
    m.once('connect', () => resolve(m))
    m.once('error', reject)
  })
}

/** One fan-in run: every publisher sends PER_PUB QoS 1 messages (MQTT.js' own window), the subscriber counts. */
async function fanIn(nodes: Node[], hub: Hub): Promise<number> {
  const sub = await client(nodes[0].port, 'sub', hub)
  await sub.subscribeAsync('bench/#', { qos: 1 })
  const pubs = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => client(nodes[i % nodes.length].port, `pub${i}`, hub)))
  const total = PUBLISHERS * PER_PUB
  let got = 0
  const all = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${got} of ${total} arrived`)), 120_000)
    sub.on('message', () => {
      if (++got === total) {
        clearTimeout(t)
        resolve()
      }
    })
  })
  const t0 = process.hrtime.bigint()
  await Promise.all(
    pubs.map(async (p, i) => {
      const sends: Promise<unknown>[] = []
      for (let k = 0; k < PER_PUB; k++) sends.push(p.publishAsync(`bench/${i}`, PAYLOAD, { qos: 1 }))
      await Promise.all(sends)
    }),
  )
  await all
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  await Promise.all([sub, ...pubs].map((c) => c.endAsync()))
  return total / secs
}

async function startRedis(): Promise<{ url: string; proc: ChildProcess; dir: string }> {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-redis-'))
  // appendonly yes + appendfsync everysec: the setting the README recommends for a cluster.
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'], { stdio: ['ignore', 'pipe', 'pipe'] })
  await waitLine(proc, 'stdout', /Ready to accept connections/, 'redis-server')
  return { url: `redis://127.0.0.1:${port}/0`, proc, dir }
}


async function main(): Promise<void> {
  const devices = ['sub', ...Array.from({ length: PUBLISHERS }, (_, i) => `pub${i}`)]
  const tmp: string[] = []
  const home = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-cluster-'))
    tmp.push(d)
    return d
  }
  const redis = await startRedis()
  const embeddedHub = await makeHub([home()], undefined, devices)
  const redisHub = await makeHub([home(), home()], redis.url, devices)
  const results: Record<string, number[]> = { embedded: [], 'redis x1': [], 'redis x2': [] }
  console.log(`fan-in: ${PUBLISHERS} publishers x ${PER_PUB} QoS1 msgs of ${PAYLOAD.length} B → 1 subscriber; ${ROUNDS} rounds; ${cpus().length} CPUs`)
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of Object.keys(results)) {
        const homes = name === 'embedded' ? embeddedHub.homes : name === 'redis x1' ? redisHub.homes.slice(0, 1) : redisHub.homes
        const nodes: Node[] = []
        for (const h of homes) nodes.push(await startNode(h))
        try {
          const rate = await fanIn(nodes, name === 'embedded' ? embeddedHub : redisHub)
          results[name].push(rate)
          console.log(`  round ${r + 1} ${name.padEnd(9)} ${Math.round(rate)} msg/s`)
        } finally {
          await Promise.all(nodes.map((n) => stop(n.proc)))
        }
      }
    }
    const e = median(results.embedded)
    const one = median(results['redis x1'])
    const two = median(results['redis x2'])
    console.log('\nmedian msg/s (fan-in, QoS 1):')
    console.log(`  embedded (1 node, SQLite + LevelDB)  ${Math.round(e)}`)
    console.log(`  redis, 1 node                        ${Math.round(one)}   (${((one / e) * 100).toFixed(0)}% of embedded)`)
    console.log(`  redis, 2 nodes                       ${Math.round(two)}   (${(two / one).toFixed(2)}x one redis node)`)
  } finally {
    await stop(redis.proc)
    for (const d of [...tmp, redis.dir]) rmSync(d, { recursive: true, force: true })
  }
}

await main()
