/**
 * The device side of IoT Hub over MQTT (what a device SDK does), for the device-side commands
 * (`telemetry send`, `twin get/report`, `method serve`, `c2d receive`, `simulate`) and tests.
 * Speaks the raw IoT Hub topics (PROTOCOL.md §4) over MQTT.js; credentials come from the
 * registry (fresh SAS) and the hub CA, like `pub/sub --device`.
 */
import { randomUUID } from 'node:crypto'

import type { MqttClient } from 'mqtt'

import type { HubContext } from '../config/home.js'
import { deviceConnectOptions, openClient, type ClientConnectOptions } from '../client/connect.js'
import { readBrokerState } from '../client/broker-state.js'
import { EdgeMqError, TimeoutError } from '../errors.js'
import {
  formatMethodResponseTopic,
  formatTelemetryTopic,
  formatTwinGetTopic,
  formatTwinReportedTopic,
  parseIotHubTopic,
  parsePropsFlag,
  type SystemProperties,
} from '../iothub/index.js'
import { ensureHubPki } from '../pki/index.js'
import { buildSasToken, deviceResource } from '../sas/index.js'
import type { TwinResponseBody } from '../twin/index.js'

export interface DeviceTarget {
  deviceId: string
  moduleId?: string
}

export interface MethodRequest {
  name: string
  payload: unknown
}

export interface IncomingMessage {
  topic: string
  payload: Buffer
  properties: Record<string, string>
  systemProperties: SystemProperties
}

/** Connect options for a registered device/module: fresh SAS, TLS with the hub CA. */
/** How a device connects, beyond its identity: az's `--key` (sign with this key, not the registry's) and `--model-id` (IoT Plug and Play). */
export interface DeviceAuthOptions {
  durationSecs?: number
  /** Sign the SAS token with this key instead of the identity's primary key from the registry. */
  symmetricKey?: string
  /** Announce this DTDL model id in the username (`&model-id=…`). */
  modelId?: string
}

export async function deviceClientOptions(ctx: HubContext, target: DeviceTarget, auth: DeviceAuthOptions = {}): Promise<ClientConnectOptions> {
  const durationSecs = auth.durationSecs ?? 3600
  const sas = auth.symmetricKey
    ? buildSasToken({ resource: deviceResource(ctx.hub.name, target.deviceId, target.moduleId), key: auth.symmetricKey, durationSecs })
    : await ctx.registry.sasToken(target.deviceId, target.moduleId, { durationSecs })
  const pki = await ensureHubPki(ctx.paths.pki, { hubName: ctx.hub.name })
  const opts = deviceConnectOptions(ctx.hub.name, target.deviceId, target.moduleId, sas, pki.caPem, readBrokerState(ctx.home))
  return auth.modelId ? { ...opts, username: `${opts.username}&model-id=${encodeURIComponent(auth.modelId)}` } : opts
}

export class DeviceClient {
  private readonly pending = new Map<string, (status: number, body: Buffer, topic: string) => void>()
  private subscribedResponses?: Promise<void>

  private constructor(
    readonly mqtt: MqttClient,
    readonly target: DeviceTarget,
  ) {
    mqtt.on('message', (topic, payload) => {
      if (!topic.startsWith('$iothub/twin/res/')) return
      const t = parseIotHubTopic(topic)
      if (t.kind !== 'twin-response') return
      const cb = this.pending.get(t.rid)
      if (cb) {
        this.pending.delete(t.rid)
        cb(t.status, payload, topic)
      }
    })
  }

  static async connect(ctx: HubContext, target: DeviceTarget, extra: Partial<ClientConnectOptions> = {}, auth: DeviceAuthOptions = {}): Promise<DeviceClient> {
    const opts = { ...(await deviceClientOptions(ctx, target, auth)), ...extra }
    return new DeviceClient(await openClient(opts), target)
  }

  static async connectWith(opts: ClientConnectOptions, target: DeviceTarget): Promise<DeviceClient> {
    return new DeviceClient(await openClient(opts), target)
  }

  private subscribe(filter: string, qos: 0 | 1 = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      this.mqtt.subscribe(filter, { qos }, (err, granted) => {
        if (err) return reject(err)
        if (granted?.some((g) => g.qos === 128)) return reject(new EdgeMqError(`the broker refused the subscription to ${filter}`, { hint: 'check the $edgeHub authorization policy (`edgemq policy check`)' }))
        resolve()
      })
    })
  }

  private publish(topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
    return new Promise((resolve, reject) => this.mqtt.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve())))
  }

  private request(topic: (rid: string) => string, body: string, timeoutMs: number): Promise<{ status: number; body: Buffer; topic: string }> {
    this.subscribedResponses ??= this.subscribe('$iothub/twin/res/#')
    return this.subscribedResponses.then(
      () =>
        new Promise((resolve, reject) => {
          const rid = randomUUID().slice(0, 8)
          const timer = setTimeout(() => {
            this.pending.delete(rid)
            reject(new TimeoutError(`no twin response within ${timeoutMs / 1000} s`))
          }, timeoutMs)
          this.pending.set(rid, (status, b, t) => {
            clearTimeout(timer)
            resolve({ status, body: b, topic: t })
          })
          this.publish(topic(rid), body, 0).catch(reject)
        }),
    )
  }

  async getTwin(timeoutMs = 10_000): Promise<TwinResponseBody> {
    const r = await this.request((rid) => formatTwinGetTopic(rid), '', timeoutMs)
    if (r.status !== 200) throw new EdgeMqError(`twin GET answered ${r.status}: ${r.body.toString()}`)
    return JSON.parse(r.body.toString('utf8')) as TwinResponseBody
  }

  /** Reports a patch; resolves with the new reported `$version`. */
  async reportProperties(patch: unknown, timeoutMs = 10_000): Promise<number> {
    const r = await this.request((rid) => formatTwinReportedTopic(rid), JSON.stringify(patch), timeoutMs)
    if (r.status !== 204) {
      const msg = r.body.length ? ((JSON.parse(r.body.toString()) as { message?: string }).message ?? r.body.toString()) : ''
      throw new EdgeMqError(`reported patch refused with status ${r.status}${msg ? `: ${msg}` : ''}`, { exitCode: r.status === 400 ? 2 : 1 })
    }
    const t = parseIotHubTopic(r.topic)
    return t.kind === 'twin-response' && t.version !== undefined ? t.version : -1
  }

  async onDesired(cb: (patch: Record<string, unknown>) => void): Promise<void> {
    this.mqtt.on('message', (topic, payload) => {
      if (topic.startsWith('$iothub/twin/PATCH/properties/desired/')) cb(JSON.parse(payload.toString('utf8')) as Record<string, unknown>)
    })
    await this.subscribe('$iothub/twin/PATCH/properties/desired/#')
  }

  /** Answers direct methods with the handler's status and payload. */
  /** Answers direct methods with `handler`; `answered` is called once an answer has been written to the broker. */
  async onMethod(
    handler: (req: MethodRequest) => Promise<{ status: number; payload: unknown }> | { status: number; payload: unknown },
    answered?: (req: MethodRequest) => void,
  ): Promise<void> {
    this.mqtt.on('message', (topic, payload) => {
      const t = parseIotHubTopic(topic)
      if (t.kind !== 'method-request') return
      let body: unknown = null
      try {
        body = payload.length ? JSON.parse(payload.toString('utf8')) : null
      } catch {
        body = payload.toString('utf8')
      }
      const req = { name: t.methodName, payload: body }
      void Promise.resolve()
        .then(() => handler(req))
        .catch((err: unknown) => ({ status: 500, payload: { error: (err as Error).message } }))
        .then((r) => this.publish(formatMethodResponseTopic(r.status, t.rid), JSON.stringify(r.payload ?? null), 0))
        .then(() => answered?.(req))
        .catch(() => undefined) // the connection is gone: nothing to answer on
    })
    await this.subscribe('$iothub/methods/POST/#')
  }

  /** C2D (devices) or module inputs (modules). */
  async onMessage(cb: (m: IncomingMessage) => void): Promise<void> {
    const { deviceId, moduleId } = this.target
    const filter = moduleId ? `devices/${deviceId}/modules/${moduleId}/inputs/#` : `devices/${deviceId}/messages/devicebound/#`
    this.mqtt.on('message', (topic, payload) => {
      const t = parseIotHubTopic(topic)
      if (t.kind === 'c2d' || t.kind === 'module-input') cb({ topic, payload, properties: t.properties, systemProperties: t.systemProperties })
    })
    await this.subscribe(filter, 1)
  }

  async sendTelemetry(data: string | Buffer, props?: string, output?: string): Promise<void> {
    const bag = props ? parsePropsFlag(props) : { properties: {}, systemProperties: {} }
    const sys: SystemProperties = { messageId: randomUUID(), ...bag.systemProperties, ...(output ? { outputName: output } : {}) }
    await this.publish(formatTelemetryTopic(this.target, bag.properties, sys), data, 1)
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.mqtt.end(false, {}, () => resolve()))
  }
}

/** az's default `--msg-interval` for `az iot device simulate`, in seconds. */
export const SIMULATE_DEFAULT_INTERVAL_SECS = 3

/**
 * The pause between simulated messages: `--msg-interval/--mi` is seconds (as az), `--interval`
 * milliseconds (edgemq's own flag); neither → az's 3 s.
 */
export function simulateIntervalMs(opts: { msgIntervalSecs?: number; intervalMs?: number }): number {
  if (opts.msgIntervalSecs !== undefined) return opts.msgIntervalSecs * 1000
  if (opts.intervalMs !== undefined) return opts.intervalMs
  return SIMULATE_DEFAULT_INTERVAL_SECS * 1000
}
