// Telemetry → the built-in Event Hubs-compatible endpoint (issue 18): MQTT.js devices publish QoS 1
// telemetry (a window of PUBACKs in flight per device), the unmodified @azure/event-hubs
// EventHubConsumerClient reads every partition over plain AMQP (UseDevelopmentEmulator=true).
// events/s = events / (last received − first sent); end-to-end latency = received − sent, per event
// (the send time travels in the body). Hub, devices and consumer share this process.
//   node --import tsx bench/eventhubs.ts        (N=… DEVICES=… WINDOW=… DISK=0 for an in-memory hub)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { connect, type MqttClient } from 'mqtt'

import { startHub, type Hub } from '../src/emulator/index.js'
import { collectEvents, earliestEventPosition, EventHubConsumerClient } from '../test/helpers/eventhubs.js'

const N = Number(process.env.N ?? 5000)
const DEVICES = Number(process.env.DEVICES ?? 4)
const WINDOW = Number(process.env.WINDOW ?? 32)
const DISK = process.env.DISK !== '0'

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

async function device(hub: Hub, id: string): Promise<MqttClient> {
  await hub.createDevice(id)
  const client = connect({ host: '127.0.0.1', port: hub.ports.mqtt, clientId: id, username: `${hub.hostName}/${id}/?api-version=2021-04-12`, password: await hub.sas(id), reconnectPeriod: 0 })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  return client
}

async function run(onDisk: boolean): Promise<void> {
  const home = onDisk ? mkdtempSync(path.join(tmpdir(), 'edgemq-bench-eh-')) : undefined
  const hub = await startHub({ inMemory: !onDisk, home, ports: { mqtts: null, rest: null, amqp: 0 } })
  const cs = hub.eventHubConnectionString()
  const consumer = new EventHubConsumerClient('$Default', cs)
  try {
    const ids = Array.from({ length: DEVICES }, (_, i) => `bench-eh-${i}`)
    const clients = await Promise.all(ids.map((id) => device(hub, id)))
    const latencies: number[] = []
    const collector = collectEvents(consumer, N, {
      startPosition: earliestEventPosition,
      timeoutMs: 120_000,
      maxBatchSize: 300,
      onEvent: (r) => latencies.push(r.at - (r.event.body as { t: number }).t),
    })
    // Let the four partition readers attach before the clock starts.
    await consumer.getPartitionIds()
    const t0 = Date.now()
    const perDevice = Math.ceil(N / DEVICES)
    await Promise.all(
      clients.map(async (c, d) => {
        const inFlight = new Set<Promise<unknown>>()
        for (let i = 0; i < perDevice && d * perDevice + i < N; i++) {
          const p = c.publishAsync(`devices/${ids[d]}/messages/events/seq=${i}`, JSON.stringify({ t: Date.now(), i }), { qos: 1 })
          inFlight.add(p)
          void p.finally(() => inFlight.delete(p))
          if (inFlight.size >= WINDOW) await Promise.race(inFlight)
        }
        await Promise.all(inFlight)
      }),
    )
    const acked = Date.now()
    const got = await collector.done
    const secs = (got[got.length - 1].at - t0) / 1000
    latencies.sort((a, b) => a - b)
    console.log(
      `${onDisk ? 'on disk  ' : 'in memory'}  ${N} events from ${DEVICES} devices (QoS 1, window ${WINDOW}): ` +
        `${Math.round(N / secs)} events/s end to end (publish ${Math.round(N / ((acked - t0) / 1000))}/s acknowledged); ` +
        `latency p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies[latencies.length - 1]} ms`,
    )
    await collector.close()
    await Promise.all(clients.map((c) => c.endAsync()))
  } finally {
    await consumer.close()
    await hub.close()
    if (home) rmSync(home, { recursive: true, force: true })
  }
}

console.log(`telemetry → Event Hubs-compatible endpoint (@azure/event-hubs EventHubConsumerClient), load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`)
if (DISK) await run(true)
await run(false)
