// Bridge benchmark (issue 7): two real `edgemq broker start` processes, parent and child (nested
// edge, the seed's bridge sample). Measures, child → parent, QoS1, 100-byte payloads:
//   - throughput: a publisher on the child's `/local/telemetry/bench` (window of WINDOW unacked
//     QoS1 publishes) → the bridge (durable SQLite queue, MQTT.js over TLS as the child edge
//     device) → a subscriber on the parent's `/remote/messages/#`; msg/s = N / (first publish →
//     last arrival). Baseline: the same publisher pattern straight to the parent (over TLS,
//     as the bridge is).
//   - latency: one message at a time (publish → arrival at the parent subscriber), LAT_N times,
//     bridged and direct; p50/p99 and the added latency (bridged − direct).
//   node --import tsx bench/bridge.ts      (N=… WINDOW=… LAT_N=… ROUNDS=… to change)
// Anchor: EMQX reports ~30k msg/s and p99 17 ms across a bridge on 4 vCPU.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'

import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt'

import { BIN, SEED_FIXTURES } from '../test/helpers/paths.js'

const SEED_BRIDGE = path.join(SEED_FIXTURES, 'seed-bridge.json')

const N = Number(process.env.N ?? 20_000)
const WINDOW = Number(process.env.WINDOW ?? 256)
const LAT_N = Number(process.env.LAT_N ?? 500)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const PAYLOAD = Buffer.alloc(100, 0x78)

const env = { ...process.env, NODE_OPTIONS: undefined, NO_COLOR: '1' }
function cli(home: string, args: string[], input?: string): string {
  return execFileSync(process.execPath, [BIN, ...args], { env: { ...env, EDGEMQ_HOME: home }, input, encoding: 'utf8' })
}

interface Ready {
  ports: { mqtt: number; mqtts: number }
  caFile: string
}

async function startBroker(home: string): Promise<{ proc: ChildProcess; ready: Ready }> {
  const proc = spawn(process.execPath, [BIN, 'broker', 'start', '--home', home, '--port', '0', '--tls-port', '0', '-o', 'json', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  const ready = await new Promise<Ready>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const m = JSON.parse(line) as { event?: string } & Ready
        if (m.event === 'ready') resolve(m)
      } catch {
        /* banner */
      }
    })
    proc.once('exit', (c) => reject(new Error(`broker exited ${c}`)))
  })
  return { proc, ready }
}

async function client(home: string, hub: string, deviceId: string, port: number, tlsCa?: string): Promise<MqttClient> {
  const opts: IClientOptions = {
    host: '127.0.0.1',
    port,
    protocol: tlsCa ? 'mqtts' : 'mqtt',
    clientId: deviceId,
    username: `${hub}.azure-devices.net/${deviceId}/?api-version=2018-06-30`,
    password: cli(home, ['sas', '--device', deviceId, '--raw']).trim(),
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: true,
    ...(tlsCa ? { ca: readFileSync(tlsCa), servername: 'localhost', rejectUnauthorized: true } : {}),
  }
  const c = mqttConnect(opts)
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve())
    c.once('error', reject)
  })
  return c
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const median = (xs: number[]) => pct(xs, 50)

/** Publishes `n` QoS1 messages with at most `window` unacked; resolves when `arrived()` reaches n. */
async function throughput(pub: MqttClient, topic: string, sub: MqttClient, n: number): Promise<number> {
  let got = 0
  let resolveDone!: () => void
  const done = new Promise<void>((r) => (resolveDone = r))
  const onMsg = (t: string) => {
    if (t.endsWith('/tp') && ++got === n) resolveDone()
  }
  sub.on('message', onMsg)
  const t0 = performance.now()
  let sent = 0
  await new Promise<void>((resolve, reject) => {
    let inflight = 0
    const pump = () => {
      while (inflight < WINDOW && sent < n) {
        inflight++
        sent++
        pub.publish(topic, PAYLOAD, { qos: 1 }, (err) => {
          if (err) return reject(err)
          inflight--
          if (sent === n && inflight === 0) resolve()
          else pump()
        })
      }
    }
    pump()
  })
  await done
  const ms = performance.now() - t0
  sub.removeListener('message', onMsg)
  return (n / ms) * 1000
}

/** One message at a time: publish → arrival, in ms. */
async function latency(pub: MqttClient, topic: string, sub: MqttClient, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const arrived = new Promise<void>((resolve) => {
      const on = (t: string, p: Buffer) => {
        if (t.endsWith('/lat') && p.toString() === String(i)) {
          sub.removeListener('message', on)
          resolve()
        }
      }
      sub.on('message', on)
    })
    const t0 = performance.now()
    pub.publish(topic, String(i), { qos: 1 })
    await arrived
    out.push(performance.now() - t0)
  }
  return out
}

async function main(): Promise<void> {
  const parentHome = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-parent-'))
  const childHome = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-child-'))
  const procs: ChildProcess[] = []
  const clients: MqttClient[] = []
  try {
    const connectAll = [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }]
    cli(parentHome, ['hub', 'init', '--name', 'parenthub'])
    cli(parentHome, ['device', 'create', 'child-edge', '--edge'])
    for (const d of ['watcher', 'direct']) cli(parentHome, ['device', 'create', d])
    cli(parentHome, ['edgehub', 'set', '-'], JSON.stringify({
      schemaVersion: '1.2',
      mqttBroker: { authorizations: [...connectAll, { identities: ['child-edge', 'watcher', 'direct'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['/remote/messages/#', 'alerts/#'] }] }] },
    }))
    cli(childHome, ['hub', 'init', '--name', 'childhub'])
    cli(childHome, ['device', 'create', 'local'])
    cli(childHome, ['edgehub', 'set', '-'], JSON.stringify({
      schemaVersion: '1.2',
      mqttBroker: { authorizations: [...connectAll, { identities: ['local'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['/local/telemetry/#'] }] }] },
    }))
    cli(childHome, ['edgehub', 'set', SEED_BRIDGE])

    const parent = await startBroker(parentHome)
    procs.push(parent.proc)
    const cs = cli(parentHome, ['connection-string', 'show', '--device', 'child-edge', '--gateway', 'localhost', '-o', 'tsv']).trim()
    cli(childHome, ['hub', 'set-upstream', '--connection-string', cs, '--port', String(parent.ready.ports.mqtts), '--ca', parent.ready.caFile])
    const child = await startBroker(childHome)
    procs.push(child.proc)

    const watcher = await client(parentHome, 'parenthub', 'watcher', parent.ready.ports.mqtt)
    const direct = await client(parentHome, 'parenthub', 'direct', parent.ready.ports.mqtts, parent.ready.caFile)
    const local = await client(childHome, 'childhub', 'local', child.ready.ports.mqtt)
    clients.push(watcher, direct, local)
    await watcher.subscribeAsync('/remote/messages/#', { qos: 1 })

    // Warm-up (and proof the bridge is up): a bridged message must arrive.
    await latency(local, '/local/telemetry/lat', watcher, 50)
    await latency(direct, '/remote/messages/lat', watcher, 50)

    console.log(`# ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); N=${N} WINDOW=${WINDOW} LAT_N=${LAT_N} ROUNDS=${ROUNDS}; QoS1, 100-byte payloads`)
    const tp = { direct: [] as number[], bridged: [] as number[] }
    for (let r = 0; r < ROUNDS; r++) {
      tp.direct.push(await throughput(direct, '/remote/messages/tp', watcher, N))
      tp.bridged.push(await throughput(local, '/local/telemetry/tp', watcher, N))
      console.log(`round ${r + 1}: direct ${tp.direct[r].toFixed(0)} msg/s, bridged ${tp.bridged[r].toFixed(0)} msg/s`)
    }
    const lat = { direct: [] as number[], bridged: [] as number[] }
    // Interleaved halves, so drift (GC, other load) hits both alike.
    for (let h = 0; h < 2; h++) {
      lat.direct.push(...(await latency(direct, '/remote/messages/lat', watcher, LAT_N / 2)))
      lat.bridged.push(...(await latency(local, '/local/telemetry/lat', watcher, LAT_N / 2)))
    }
    const f = (x: number) => x.toFixed(2)
    console.log('')
    console.log(`throughput (median of ${ROUNDS}): direct to parent ${median(tp.direct).toFixed(0)} msg/s, bridged child→parent ${median(tp.bridged).toFixed(0)} msg/s (${((median(tp.bridged) / median(tp.direct)) * 100).toFixed(0)}% of direct)`)
    console.log(`latency direct  : p50 ${f(pct(lat.direct, 50))} ms, p99 ${f(pct(lat.direct, 99))} ms`)
    console.log(`latency bridged : p50 ${f(pct(lat.bridged, 50))} ms, p99 ${f(pct(lat.bridged, 99))} ms`)
    console.log(`added by bridge : p50 ${f(pct(lat.bridged, 50) - pct(lat.direct, 50))} ms, p99 ${f(pct(lat.bridged, 99) - pct(lat.direct, 99))} ms`)
    console.log('anchor (EMQX, 4 vCPU): ~30k msg/s across a bridge, p99 17 ms')
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)))
    for (const p of procs.reverse()) {
      p.kill('SIGTERM')
      await new Promise((r) => p.once('exit', r))
    }
    rmSync(parentHome, { recursive: true, force: true })
    rmSync(childHome, { recursive: true, force: true })
  }
}

await main()
