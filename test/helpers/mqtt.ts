/**
 * Small MQTT.js helpers for broker tests: connect with IoT Hub credentials, learn the CONNACK
 * code of a refusal, wait for N messages or for the connection to close — all on events, never
 * on sleeps. Also `runProc` for the mosquitto clients.
 *
 *   const c = await connect({ port, clientId: 'd1', password: sas })
 *   assert.equal(await connackCode({ port, clientId: 'ghost', password: sas }), 5)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt'

export const HUB_HOST = 'edgemq.azure-devices.net'

/** The IoT Hub username for a client id (`<hub>/<deviceId>[/<moduleId>]/?api-version=…`). */
export function iothubUsername(clientId: string, host = HUB_HOST): string {
  return `${host}/${clientId}/?api-version=2018-06-30`
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
    protocol: o.tls ? 'mqtts' : 'mqtt',
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
  /** Resolves with the first stdout/stderr line matching `re` (already printed or future). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  done: Promise<ProcResult>
}

/** Spawns a program (mosquitto_sub, …) and exposes its output as events. Killed after `timeoutMs`. */
export function runProc(cmd: string, args: string[], timeoutMs = 20_000): RunningProc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = []
  const onText = (text: string) => {
    for (const w of [...waiters]) {
      const line = text.split('\n').find((l) => w.re.test(l))
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  }
  child.stdout.setEncoding('utf8').on('data', (d: string) => ((stdout += d), onText(stdout)))
  child.stderr.setEncoding('utf8').on('data', (d: string) => ((stderr += d), onText(stderr)))
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const done = once(child, 'close').then(([code, signal]) => {
    clearTimeout(killer)
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }
  })
  return {
    child,
    done,
    waitFor(re, ms = 10_000) {
      const hit = (stdout + '\n' + stderr).split('\n').find((l) => re.test(l))
      if (hit !== undefined) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${cmd}: no output line matched ${re} within ${ms} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`)), ms)
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) })
        // A process that ends without the line fails the wait at once, not after the timeout.
        void done.then(() => {
          if (!waiters.some((w) => w.re === re)) return
          clearTimeout(t)
          reject(new Error(`${cmd} exited (${child.exitCode}) before printing ${re}\nstdout:\n${stdout}\nstderr:\n${stderr}`))
        })
      })
    },
  }
}

/**
 * Resolves with the next broker log line matching `re` that is logged AFTER this call (the broker
 * helper's `waitForLog` also returns lines already logged, so it cannot wait for a second one).
 * Call it before triggering what should log.
 */
export function nextLogLine(broker: { proc: ChildProcess }, re: RegExp, timeoutMs = 10_000): Promise<string> {
  const stderr = broker.proc.stderr
  if (!stderr) return Promise.reject(new Error('broker stderr is not piped'))
  let buf = ''
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer | string) => {
      buf += d.toString()
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      const hit = lines.find((l) => re.test(l))
      if (hit !== undefined) {
        cleanup()
        resolve(hit)
      }
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`no new broker log line matched ${re} within ${timeoutMs} ms`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      stderr.removeListener('data', onData)
    }
    stderr.on('data', onData)
  })
}
