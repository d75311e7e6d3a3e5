/**
 * Raw IoT Hub wire helpers for the issue-6 tests: a plain MQTT.js client that speaks the IoT Hub
 * topics itself (no DeviceClient) with a device SAS token as password, hub setup in process, and
 * `edgemq monitor` as a long-running child whose output is read line by line.
 *
 *   const dev = await rawDevice(home, broker, 'd1')
 *   await subscribeGranted(dev, '$iothub/twin/res/#')         // → [0]
 *   const res = nextMessage(dev, (m) => m.topic.startsWith('$iothub/twin/res/'))
 *   dev.publish('$iothub/twin/GET/?$rid=1', '')
 *   (await res).topic                                        // '$iothub/twin/res/200/?$rid=1'
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

import type { MqttClient } from 'mqtt'

import { openHub } from '../../src/config/home.js'
import { defaultPolicyDocument, setEdgeHubDesired } from '../../src/service/edgehub.js'
import { BIN, cliOk } from './cli.js'
import { connect, HUB_HOST, iothubUsername, nextMessage, SDK_API_VERSION, type Received } from './mqtt.js'

const sasCache = new Map<string, string>()

/**
 * Creates devices and modules (`<device>/<module>`) and sets the seed's default policy, in
 * process (setup, not the thing under test: one sqlite open instead of a CLI run per identity),
 * and remembers a SAS token for each. Call before the broker starts.
 */
export async function setupHub(home: string, ids: string[]): Promise<void> {
  const ctx = await openHub({ home, createDefault: true })
  try {
    for (const id of ids) {
      const [d, m] = id.split('/') as [string, string | undefined]
      if (m) await ctx.registry.createModule({ deviceId: d, moduleId: m })
      else await ctx.registry.createDevice({ deviceId: d })
    }
    await setEdgeHubDesired(ctx, defaultPolicyDocument())
    for (const id of ids) {
      const [d, m] = id.split('/') as [string, string | undefined]
      sasCache.set(`${home}|${id}`, await ctx.registry.sasToken(d, m, { durationSecs: 3600 }))
    }
  } finally {
    await ctx.close()
  }
}

/** `edgemq sas --device d [--module m] --raw`, the way a user gets a device's password. */
export async function cliSas(home: string, clientId: string): Promise<string> {
  const [d, m] = clientId.split('/') as [string, string | undefined]
  const sas = (await cliOk(home, ['sas', '--device', d, ...(m ? ['--module', m] : []), '--raw'])).trim()
  assert.match(sas, /^SharedAccessSignature sr=[^ ]+&sig=[^ ]+&se=\d+$/)
  return sas
}

/** The SAS token setupHub made for `clientId`, else one from the CLI. */
export async function sasOf(home: string, clientId: string): Promise<string> {
  return sasCache.get(`${home}|${clientId}`) ?? cliSas(home, clientId)
}

/** A plain MQTT.js client connected as `clientId` (device or `device/module`) on the plain port. */
export async function rawDevice(home: string, broker: { ports: { mqtt: number } }, clientId: string, password?: string): Promise<MqttClient> {
  return connect({ port: broker.ports.mqtt, clientId, username: iothubUsername(clientId, HUB_HOST, SDK_API_VERSION), password: password ?? (await sasOf(home, clientId)) })
}

/** Every message the client receives from now on (for "never receives" assertions). */
export function recordAll(client: MqttClient): Received[] {
  const got: Received[] = []
  client.on('message', (topic, payload, packet) => got.push({ topic, payload, qos: packet.qos, retain: packet.retain }))
  return got
}

/** Publishes a twin request and resolves with the matching `$iothub/twin/res/…` message. */
export async function twinRequest(client: MqttClient, topic: string, body: string | Buffer, rid: string, ridKey: '$rid' | 'rid' = '$rid', qos: 0 | 1 = 0): Promise<Received> {
  const res = nextMessage(client, (m) => m.topic.startsWith('$iothub/twin/res/') && new RegExp(`[?&]${ridKey.replace('$', '\\$')}=${rid}(&|$)`).test(m.topic))
  await client.publishAsync(topic, body, { qos })
  return res
}

export interface MonitorEvent {
  event: {
    origin: string
    module: string
    payload: unknown
    output?: string
    properties?: { system: Record<string, string>; application: Record<string, string> }
  }
}

export interface RunningMonitor {
  child: ChildProcess
  /** Every event printed so far. */
  events: MonitorEvent[]
  /** Resolves with the first event (printed or future) that `match` accepts. */
  waitFor(match: (e: MonitorEvent) => boolean, timeoutMs?: number): Promise<MonitorEvent>
  /** SIGINT (monitor's own clean stop) and wait for exit. */
  stop(): Promise<{ code: number | null; stderr: string }>
}

/**
 * Starts `edgemq monitor …` and resolves once it is streaming. `monitor` prints no readiness
 * line when stdout is not a TTY, so `probe()` (one telemetry message whose payload carries the
 * given marker) is repeated, with a bound, until monitor prints it. Probe events stay in `events`.
 */
export async function startMonitor(home: string, args: string[], probe: (marker: string) => Promise<void>): Promise<RunningMonitor> {
  const child = spawn(process.execPath, [BIN, 'monitor', '--timeout', '60', '--props', ...args], {
    env: { ...process.env, EDGEMQ_HOME: home, NO_COLOR: '1', NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const events: MonitorEvent[] = []
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const waiters: { match: (e: MonitorEvent) => boolean; resolve: (e: MonitorEvent) => void }[] = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.trim()) return
    const e = JSON.parse(line) as MonitorEvent
    events.push(e)
    for (const w of [...waiters]) {
      if (w.match(e)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(e)
      }
    }
  })
  const exited = once(child, 'exit')
  const waitFor = (match: (e: MonitorEvent) => boolean, timeoutMs = 10_000): Promise<MonitorEvent> => {
    const hit = events.find(match)
    if (hit) return Promise.resolve(hit)
    return new Promise((resolve, reject) => {
      const w = { match, resolve: (e: MonitorEvent) => (clearTimeout(t), resolve(e)) }
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1)
        reject(new Error(`monitor printed no matching event within ${timeoutMs} ms; got ${JSON.stringify(events)}\nstderr: ${stderr}`))
      }, timeoutMs)
      waiters.push(w)
    })
  }
  const marker = `probe-${process.pid}-${Date.now()}`
  const isProbe = (e: MonitorEvent) => JSON.stringify(e.event.payload).includes(marker)
  let ready = false
  for (let i = 0; i < 60 && !ready; i++) {
    if (child.exitCode !== null) throw new Error(`monitor exited ${child.exitCode}: ${stderr}`)
    await probe(marker)
    ready = await waitFor(isProbe, 250).then(
      () => true,
      () => false,
    )
  }
  if (!ready) {
    child.kill('SIGKILL')
    throw new Error(`monitor never saw a probe: ${stderr}`)
  }
  return {
    child,
    events,
    waitFor,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      const [code] = (await exited) as [number | null]
      return { code, stderr }
    },
  }
}

/** A telemetry probe for `startMonitor` sent by a raw client as `clientId` on its own events topic. */
export function rawProbe(client: MqttClient, clientId: string): (marker: string) => Promise<void> {
  const [d, m] = clientId.split('/') as [string, string | undefined]
  const topic = m ? `devices/${d}/modules/${m}/messages/events/` : `devices/${d}/messages/events/`
  return async (marker) => {
    await client.publishAsync(topic, JSON.stringify({ probe: marker }), { qos: 1 })
  }
}
