/**
 * Small MQTT.js helpers for broker tests: connect with IoT Hub credentials, learn the CONNACK
 * code of a refusal, wait for N messages or for the connection to close — all on events, never
 * on sleeps. Also `runProc` for the mosquitto clients.
 *
 *   const c = await connect({ port, clientId: 'd1', password: sas })
 *   assert.equal(await connackCode({ port, clientId: 'ghost', password: sas }), 5)
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt'

import { LineLog, type WaitForLogOptions } from './log.js'

export const HUB_HOST = 'edgemq.azure-devices.net'

/** The api-version mosquitto users send (the seed's commands). */
export const MOSQUITTO_API_VERSION = '2018-06-30'
/** The api-version the Azure IoT SDKs send (PROTOCOL.md §1). */
export const SDK_API_VERSION = '2021-04-12'

/** The IoT Hub username for a client id (`<hub>/<deviceId>[/<moduleId>]/?api-version=…`). */
export function iothubUsername(clientId: string, host = HUB_HOST, apiVersion = MOSQUITTO_API_VERSION): string {
  return `${host}/${clientId}/?api-version=${apiVersion}`
}

export interface ConnectOptions {
  port: number
  clientId: string
  /** SAS token; omitted for X.509 or the "no password" case. */
  password?: string
  /** Defaults to the IoT Hub username of `clientId`; `null` sends none. */
  username?: string | null
  /** Connect over TLS, trusting `ca`; `cert`/`key` present a client certificate. */
  tls?: { ca: string | Buffer; cert?: string | Buffer; key?: string | Buffer }
  clean?: boolean
  /** A last will, published by the broker if the connection ends without DISCONNECT. */
  will?: { topic: string; payload: string | Buffer; qos?: 0 | 1; retain?: boolean }
  protocolVersion?: 3 | 4 | 5
  /** MQTT over WebSockets at this path (ws://, or wss:// with `tls`) instead of TCP. */
  wsPath?: string
  /**
   * Called with the client before CONNECT is sent: attach `collect()` here when messages may
   * arrive in the same read as the CONNACK (a persistent session's queued messages), or they
   * would be emitted before `connect()` resolves.
   */
  beforeConnect?: (client: MqttClient) => void
}

function clientOptions(o: ConnectOptions): IClientOptions {
  const opts: IClientOptions = {
    host: '127.0.0.1',
    port: o.port,
    protocol: o.wsPath !== undefined ? (o.tls ? 'wss' : 'ws') : o.tls ? 'mqtts' : 'mqtt',
    ...(o.wsPath !== undefined ? { path: o.wsPath } : {}),
    clientId: o.clientId,
    clean: o.clean ?? true,
    protocolVersion: o.protocolVersion ?? 4,
    // A test decides what happens after a drop; MQTT.js must not quietly reconnect.
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    keepalive: 60,
  }
  if (o.will) opts.will = { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: o.will.qos ?? 0, retain: o.will.retain ?? false }
  if (o.username !== null) opts.username = o.username ?? iothubUsername(o.clientId)
  if (o.password !== undefined) opts.password = o.password
  if (o.tls) {
    opts.ca = o.tls.ca
    if (o.tls.cert) opts.cert = o.tls.cert
    if (o.tls.key) opts.key = o.tls.key
    // The server cert names localhost; the tests dial 127.0.0.1.
    opts.servername = 'localhost'
    opts.rejectUnauthorized = true
  }
  return opts
}

export class ConnectRefused extends Error {
  /** CONNACK return code, or -1 when the connection closed without one. */
  constructor(readonly code: number, message: string) {
    super(message)
  }
}

/** Connects and resolves on CONNACK 0; rejects with ConnectRefused (its `code`) otherwise. */
export function connect(o: ConnectOptions): Promise<MqttClient> {
  const client = mqttConnect(clientOptions(o))
  // MQTT.js sends CONNECT on a later tick (after the socket opens), so this is in time.
  o.beforeConnect?.(client)
  return new Promise((resolve, reject) => {
    const fail = (err: ConnectRefused) => {
      client.removeListener('connect', ok)
      client.end(true)
      reject(err)
    }
    const ok = () => {
      client.removeListener('error', onError)
      client.removeListener('close', onClose)
      // Later errors (e.g. a publish on a closing socket) are the test's business, not a crash.
      client.on('error', () => undefined)
      resolve(client)
    }
    const onError = (err: Error & { code?: number | string }) =>
      fail(new ConnectRefused(typeof err.code === 'number' ? err.code : -1, `${o.clientId}: ${err.message}`))
    const onClose = () => fail(new ConnectRefused(-1, `${o.clientId}: connection closed before CONNACK`))
    client.once('connect', ok)
    client.once('error', onError)
    client.once('close', onClose)
  })
}

/** The CONNACK return code a connect gets: 0 (then the client is closed again) or the refusal. */
export async function connackCode(o: ConnectOptions): Promise<number> {
  try {
    const c = await connect(o)
    await c.endAsync()
    return 0
  } catch (err) {
    if (err instanceof ConnectRefused) return err.code
    throw err
  }
}

export interface Received {
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
}

/**
 * Resolves with the first `n` messages (optionally only those `filter` accepts); rejects after
 * `timeoutMs` with how many arrived. Register it BEFORE triggering the publishes.
 */
export function collect(client: MqttClient, n: number, opts: { timeoutMs?: number; filter?: (m: Received) => boolean } = {}): Promise<Received[]> {
  const got: Received[] = []
  return new Promise((resolve, reject) => {
    const onMessage = (topic: string, payload: Buffer, packet: { qos: number; retain: boolean }) => {
      const m = { topic, payload, qos: packet.qos, retain: packet.retain }
      if (opts.filter && !opts.filter(m)) return
      got.push(m)
      if (got.length >= n) {
        clearTimeout(timer)
        client.removeListener('message', onMessage)
        resolve(got)
      }
    }
    const timer = setTimeout(() => {
      client.removeListener('message', onMessage)
      reject(new Error(`${client.options.clientId}: got ${got.length} of ${n} messages within ${opts.timeoutMs ?? 10_000} ms`))
    }, opts.timeoutMs ?? 10_000)
    client.on('message', onMessage)
  })
}

/** The next message `match` accepts (register before triggering it). */
export async function nextMessage(client: MqttClient, match: (m: Received) => boolean = () => true, timeoutMs = 10_000): Promise<Received> {
  const [m] = await collect(client, 1, { filter: match, timeoutMs })
  return m as Received
}

/** SUBSCRIBE and resolve with the granted QoS list (128 = refused). */
export async function subscribeGranted(client: MqttClient, filters: string | string[], qos: 0 | 1 = 0): Promise<number[]> {
  try {
    const granted = await client.subscribeAsync(filters, { qos })
    return granted.map((g) => g.qos)
  } catch (err) {
    // MQTT.js 5 rejects on a SUBACK failure code, with the SUBACK packet attached.
    const granted = (err as { packet?: { granted?: unknown } }).packet?.granted
    if (Array.isArray(granted)) return granted.map((g) => (typeof g === 'number' ? g : (g as { qos: number }).qos))
    throw err
  }
}

/** Subscribes and asserts the broker granted every filter. */
export async function subscribeOk(client: MqttClient, filters: string | string[], qos: 0 | 1 = 0): Promise<void> {
  const granted = await subscribeGranted(client, filters, qos)
  assert.ok(granted.every((q) => q !== 128), `${client.options.clientId}: SUBSCRIBE ${String(filters)} refused (${granted.join(',')})`)
}

/** Resolves (with the time it happened) when the client's connection closes. */
export function closed(client: MqttClient, timeoutMs = 10_000): Promise<number> {
  // Only called on a connected client, so "not connected" means it already closed.
  if (!client.connected) return Promise.resolve(Date.now())
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${client.options.clientId}: still connected after ${timeoutMs} ms`)), timeoutMs)
    client.once('close', () => {
      clearTimeout(timer)
      resolve(Date.now())
    })
  })
}

export interface ProcResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunningProc {
  child: ChildProcess
  /** The current end of its output, for `waitFor(re, { since })`. */
  mark(): number
  /** Resolves with the first stdout/stderr line matching `re` (at or after `since`); rejects on timeout or exit. */
  waitFor(re: RegExp, opts?: WaitForLogOptions): Promise<string>
  done: Promise<ProcResult>
}

/** Spawns a program (mosquitto_sub, …) and exposes its output as events. Killed after `timeoutMs`. */
export function runProc(cmd: string, args: string[], timeoutMs = 20_000): RunningProc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const log = new LineLog(cmd).follow(child.stdout).follow(child.stderr)
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const done = once(child, 'close').then(([code, signal]) => {
    clearTimeout(killer)
    // A process that ends without the line fails the wait at once, not after the timeout.
    log.end(`${cmd} exited (${code ?? signal})`)
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }
  })
  return { child, done, mark: () => log.mark(), waitFor: (re, opts) => log.waitFor(re, opts) }
}
