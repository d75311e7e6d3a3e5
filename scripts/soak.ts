// `npm run soak -- --minutes N [--devices D]`: a long run under steady load, to see memory and
// handles stay flat. The broker (an in-memory hub) runs in a child process that also does the
// service side (C2D, direct methods, desired-property updates every few seconds, and a policy
// change every minute) and reports RSS, event-loop lag p99 and active handles each minute. This
// process runs D devices (MQTT.js, SAS): telemetry every 5 s, a reported-properties patch every
// 30 s, answers to methods, and reconnect churn (1 % of the devices every 10 s).
// Defaults: 30 minutes, 1,000 devices.
import { spawn } from 'node:child_process'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { connectAsync, type MqttClient } from 'mqtt'

import { ALLOW_ALL_AUTHORIZATIONS, startHub } from '../src/emulator/index.js'

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`)
  return v
}

interface Ready {
  port: number
  hostName: string
  sas: Record<string, string>
}

/** Child: the hub, the service-side load, and a report line each minute. */
async function serve(devices: number): Promise<void> {
  const hub = await startHub({ policy: 'allow-all', ports: { mqtts: null, rest: null } })
  const ids = Array.from({ length: devices }, (_, i) => `soak${i}`)
  const sas: Record<string, string> = {}
  for (const id of ids) {
    await hub.createDevice(id)
    sas[id] = await hub.sas(id, undefined, { durationSecs: 48 * 3600 })
  }
  const ready: Ready = { port: hub.ports.mqtt as number, hostName: hub.hostName, sas }
  process.stdout.write(JSON.stringify({ ready }) + '\n')
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  let n = 0
  const ops = { c2d: 0, methods: 0, methodErrors: 0, twins: 0, policies: 0 }
  const pickId = () => ids[Math.floor(Math.random() * ids.length)]
  const service = setInterval(() => {
    n++
    void hub.sendC2d(pickId(), `c2d ${n}`).then(() => ops.c2d++, () => undefined)
    void hub.invokeMethod(pickId(), 'ping', { n }, 5).then(() => ops.methods++, () => ops.methodErrors++)
    void hub.updateTwin(pickId(), { desired: { n } }).then(() => ops.twins++, () => undefined)
  }, 200)
  // A policy change every minute: the same rights, alternately with and without an extra statement.
  const extra = { identities: ['{{iot:identity}}'], deny: [{ operations: ['mqtt:publish'], resources: ['never/#'] }] }
  const policy = setInterval(() => {
    ops.policies++
    const authorizations = ops.policies % 2 ? [...ALLOW_ALL_AUTHORIZATIONS, extra] : ALLOW_ALL_AUTHORIZATIONS
    void hub.setEdgeHub({ schemaVersion: '1.2', mqttBroker: { authorizations } } as never, { replace: false }).catch((err: Error) => process.stderr.write(`policy change failed: ${err.message}\n`))
  }, 60_000)
  let minute = 0
  const report = setInterval(() => {
    minute++
    const status = hub.broker.status() as { clients: unknown[]; limits: unknown }
    process.stdout.write(
      JSON.stringify({
        minute,
        rssMiB: Math.round(process.memoryUsage().rss / 1024 / 1024),
        heapMiB: Math.round(process.memoryUsage().heapUsed / 1024 / 1024),
        lagP99Ms: Math.round(lag.percentile(99) / 1e6),
        handles: process.getActiveResourcesInfo().length,
        clients: status.clients.length,
        ops,
        limits: status.limits,
      }) + '\n',
    )
    lag.reset()
  }, 60_000)
  process.stdin.resume()
  process.stdin.on('end', () => {
    clearInterval(service)
    clearInterval(policy)
    clearInterval(report)
    void hub.close().then(() => process.exit(0))
  })
}

async function device(ready: Ready, id: string): Promise<MqttClient> {
  const c = await connectAsync({
    host: '127.0.0.1',
    port: ready.port,
    clientId: id,
    username: `${ready.hostName}/${id}/?api-version=2021-04-12`,
    password: ready.sas[id],
    reconnectPeriod: 0,
    keepalive: 60,
  })
  c.on('error', () => undefined)
  c.on('message', (topic) => {
    const m = /^\$iothub\/methods\/POST\/[^/]+\/\?\$rid=(.+)$/.exec(topic)
    if (m) c.publish(`$iothub/methods/res/200/?$rid=${m[1]}`, '{"ok":true}')
  })
  await c.subscribeAsync([`devices/${id}/messages/devicebound/#`, '$iothub/methods/POST/#', '$iothub/twin/res/#', '$iothub/twin/PATCH/properties/desired/#'], { qos: 0 })
  return c
}

async function main(): Promise<void> {
  const minutes = arg('minutes', 30)
  const devices = arg('devices', 1000)
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', String(devices)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const first = await new Promise<Ready>((resolve, reject) => {
    lines.once('line', (l) => resolve((JSON.parse(l) as { ready: Ready }).ready))
    child.once('exit', (code) => reject(new Error(`broker exited ${code}`)))
  })
  const ids = Object.keys(first.sas)
  const clients = new Map<string, MqttClient>()
  for (let i = 0; i < ids.length; i += 50) {
    await Promise.all(ids.slice(i, i + 50).map(async (id) => clients.set(id, await device(first, id))))
  }
  console.log(`soak: ${devices} devices connected; ${minutes} minutes; one line a minute from the broker process`)
  const rows: { minute: number; rssMiB: number; handles: number }[] = []
  lines.on('line', (l) => {
    const row = JSON.parse(l) as { minute: number; rssMiB: number; handles: number }
    rows.push(row)
    console.log(JSON.stringify(row))
  })
  let rid = 0
  let errors = 0
  const telemetry = setInterval(() => {
    // Every device every 5 s, spread over the interval in slices of 1/5.
    for (const [id, c] of clients) if (Math.random() < 0.2) c.publish(`devices/${id}/messages/events/`, JSON.stringify({ t: Date.now() }), { qos: Math.random() < 0.5 ? 0 : 1 })
  }, 1000)
  const twins = setInterval(() => {
    for (const [, c] of clients) if (Math.random() < 1 / 30) c.publish(`$iothub/twin/PATCH/properties/reported/?$rid=${++rid}`, JSON.stringify({ at: Date.now() }))
  }, 1000)
  const churn = setInterval(() => {
    const some = ids.filter(() => Math.random() < 0.01)
    for (const id of some) {
      const c = clients.get(id)
      clients.delete(id)
      void c
        ?.endAsync()
        .then(() => device(first, id))
        .then((n) => clients.set(id, n))
        .catch(() => errors++)
    }
  }, 10_000)
  await new Promise((resolve) => setTimeout(resolve, minutes * 60_000 + 5000))
  clearInterval(telemetry)
  clearInterval(twins)
  clearInterval(churn)
  const tail = rows.slice(-10)
  if (tail.length >= 2) {
    const rss = tail.map((r) => r.rssMiB)
    const mid = (Math.max(...rss) + Math.min(...rss)) / 2
    console.log(`last ${tail.length} minutes: RSS ${Math.min(...rss)}–${Math.max(...rss)} MiB (±${((100 * (Math.max(...rss) - mid)) / mid).toFixed(1)} %), handles ${tail[0].handles} → ${tail[tail.length - 1].handles}; reconnect errors ${errors}`)
  }
  await Promise.all([...clients.values()].map((c) => c.endAsync(true)))
  child.stdin!.end()
}

if (process.argv.includes('--serve')) void serve(Number(process.argv[process.argv.indexOf('--serve') + 1]))
else
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
