// IoT Hub round trips through the broker (issue 6): direct methods (service side
// `broker.iothub.invokeMethod` → MQTT → an MQTT.js device that answers → back) and twin GETs
// (an MQTT.js device publishing `$iothub/twin/GET/?$rid=…` and waiting for its `res/200`).
// Each is measured one at a time (latency p50/p99) and with several requests in flight
// (throughput). In-process broker (startEdgeBroker, in-memory hub, default policy), plain MQTT.
//   node --import tsx bench/iothub-roundtrip.ts          (N=… CONCURRENCY=… to change)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { connect, type MqttClient } from 'mqtt'

import { startEdgeBroker, type EdgeBroker } from '../src/broker/broker.js'
import { openHub } from '../src/config/home.js'
import { defaultPolicyDocument, setEdgeHubDesired } from '../src/service/edgehub.js'

const N = Number(process.env.N ?? 2000)
const WARMUP = Math.min(200, Math.ceil(N / 10))
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16)

interface Stats {
  ops: number
  perSec: number
  mean: number
  p50: number
  p99: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

/** Runs `op` `n` times with `concurrency` in flight; latency per op in ms. */
async function measure(n: number, concurrency: number, op: (i: number) => Promise<void>): Promise<Stats> {
  const lat: number[] = []
  let next = 0
  const t0 = process.hrtime.bigint()
  const worker = async () => {
    while (next < n) {
      const i = next++
      const s = process.hrtime.bigint()
      await op(i)
      lat.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  lat.sort((a, b) => a - b)
  return { ops: n, perSec: n / secs, mean: lat.reduce((a, b) => a + b, 0) / lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99) }
}

function connectDevice(port: number, clientId: string, password: string): Promise<MqttClient> {
  const c = connect({ host: '127.0.0.1', port, clientId, username: `edgemq.azure-devices.net/${clientId}/?api-version=2021-04-12`, password, reconnectPeriod: 0, clean: true })
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c))
    c.once('error', reject)
  })
}

function row(name: string, s: Stats): string {
  return `${name.padEnd(34)} ${s.perSec.toFixed(0).padStart(7)} /s   mean ${s.mean.toFixed(2).padStart(6)} ms   p50 ${s.p50.toFixed(2).padStart(6)} ms   p99 ${s.p99.toFixed(2).padStart(6)} ms   (${s.ops} ops)`
}

async function main(): Promise<void> {
  const home = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-iothub-'))
  let broker: EdgeBroker | undefined
  const clients: MqttClient[] = []
  try {
    const ctx = await openHub({ home, inMemory: true, createDefault: true })
    await ctx.registry.createDevice({ deviceId: 'bench-method' })
    await ctx.registry.createDevice({ deviceId: 'bench-twin' })
    await setEdgeHubDesired(ctx, defaultPolicyDocument())
    await ctx.store.updateTwin({ deviceId: 'bench-twin' }, (t) => ({ ...t, desired: { interval: 5, mode: { fast: true } } }), 'desired')
    broker = await startEdgeBroker({ home, inMemory: true, context: ctx, port: 0, tlsPort: null, logLevel: 'warn', writeRuntimeFile: false })
    const port = broker.ports.mqtt as number

    // The method device: answers every call with the request payload, IoT Hub's response form.
    const methodDev = await connectDevice(port, 'bench-method', await ctx.registry.sasToken('bench-method', undefined, {}))
    clients.push(methodDev)
    methodDev.on('message', (topic, payload) => {
      const rid = /\?\$rid=([^&]+)/.exec(topic)?.[1]
      if (topic.startsWith('$iothub/methods/POST/') && rid) methodDev.publish(`$iothub/methods/res/200/?$rid=${rid}`, payload)
    })
    await methodDev.subscribeAsync('$iothub/methods/POST/#')

    // The twin device: GETs by $rid, each resolved by its own response.
    const twinDev = await connectDevice(port, 'bench-twin', await ctx.registry.sasToken('bench-twin', undefined, {}))
    clients.push(twinDev)
    const pending = new Map<string, () => void>()
    twinDev.on('message', (topic) => {
      const rid = /\?\$rid=([^&]+)/.exec(topic)?.[1]
      const done = rid === undefined ? undefined : pending.get(rid)
      if (done && rid !== undefined && topic.startsWith('$iothub/twin/res/200/')) {
        pending.delete(rid)
        done()
      }
    })
    await twinDev.subscribeAsync('$iothub/twin/res/#')

    const iothub = broker.iothub
    const invoke = async (i: number) => {
      const r = await iothub.invokeMethod({ deviceId: 'bench-method' }, 'ping', { i }, 30)
      if (r.status !== 200) throw new Error(`method answered ${r.status}`)
    }
    let ridSeq = 0
    const twinGet = () =>
      new Promise<void>((resolve) => {
        const rid = String(++ridSeq)
        pending.set(rid, resolve)
        twinDev.publish(`$iothub/twin/GET/?$rid=${rid}`, '')
      })

    await measure(WARMUP, 4, invoke)
    await measure(WARMUP, 4, twinGet)
    const results: [string, Stats][] = [
      ['direct method, 1 in flight', await measure(Math.ceil(N / 2), 1, invoke)],
      [`direct method, ${CONCURRENCY} in flight`, await measure(N, CONCURRENCY, invoke)],
      ['twin GET, 1 in flight', await measure(Math.ceil(N / 2), 1, twinGet)],
      [`twin GET, ${CONCURRENCY} in flight`, await measure(N, CONCURRENCY, twinGet)],
    ]
    console.log(`IoT Hub round trips through the broker (in-process, plain MQTT, node ${process.version})`)
    for (const [name, s] of results) console.log(row(name, s))
    console.log(JSON.stringify({ bench: 'iothub-roundtrip', results: Object.fromEntries(results.map(([k, s]) => [k, { perSec: Math.round(s.perSec), meanMs: +s.mean.toFixed(3), p50Ms: +s.p50.toFixed(3), p99Ms: +s.p99.toFixed(3), ops: s.ops }])) }))
  } finally {
    await Promise.all(clients.map((c) => c.endAsync()))
    await broker?.close()
    rmSync(home, { recursive: true, force: true })
  }
}

await main()
