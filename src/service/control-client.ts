/**
 * Client of a running broker's control API (src/broker/control.ts), used by the service-side
 * commands (twin, method, c2d, monitor, broker status/stop). Finds the broker through
 * `<home>/broker.json` and signs each request with the hub's iothubowner policy.
 */
import { request } from 'node:http'

import { homePaths } from '../config/home.js'
import { BrokerUnreachableError, fromWireError } from '../errors.js'
import { readRuntime, type BrokerRuntime } from '../broker/runtime.js'
import type { HubRecord } from '../registry/types.js'
import { buildSasToken } from '../sas/index.js'

export interface ControlResponse {
  status: number
  body: unknown
  headers: Record<string, string | string[] | undefined>
}

export class ControlClient {
  constructor(
    readonly runtime: BrokerRuntime,
    private readonly hub: HubRecord,
  ) {}

  /** The running broker of this home, or BrokerUnreachableError (exit 3). */
  static connect(home: string, hub: HubRecord): ControlClient {
    const rt = readRuntime(homePaths(home).brokerState)
    if (!rt) throw new BrokerUnreachableError(`broker not reachable: no broker is running for ${home}`)
    return new ControlClient(rt, hub)
  }

  /** Undefined when no broker runs for this home. */
  static tryConnect(home: string, hub: HubRecord): ControlClient | undefined {
    const rt = readRuntime(homePaths(home).brokerState)
    return rt ? new ControlClient(rt, hub) : undefined
  }

  private token(): string {
    const p = this.hub.policies.find((x) => x.name === 'iothubowner') ?? this.hub.policies[0]
    return buildSasToken({ resource: this.hub.hostName, key: p.primaryKey, policyName: p.name, durationSecs: 3600 })
  }

  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ControlResponse> {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body))
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.runtime.ports.control,
          method,
          path,
          headers: { authorization: this.token(), ...(payload ? { 'content-length': payload.length, 'content-type': 'application/json' } : {}), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            let parsed: unknown = text
            try {
              parsed = text ? JSON.parse(text) : undefined
            } catch {
              /* keep text */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers })
          })
        },
      )
      req.on('error', (err) => reject(new BrokerUnreachableError(`broker not reachable on control port ${this.runtime.ports.control}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)))
      if (payload) req.write(payload)
      req.end()
    })
  }

  /** Like request(), but maps IoT Hub error statuses to typed errors. */
  async call<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const r = await this.request(method, path, body, headers)
    if (r.status >= 200 && r.status < 300) return r.body as T
    throw fromWireError(r.status, r.body)
  }

  /** Streams NDJSON lines from a long-lived GET until `signal` aborts. */
  stream(path: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.runtime.ports.control, method: 'GET', path, headers: { authorization: this.token() }, signal }, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            let body: unknown
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
            } catch {
              body = undefined
            }
            reject(fromWireError(res.statusCode ?? 0, body))
          })
          return
        }
        let buf = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          buf += c
          let nl
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim()
            buf = buf.slice(nl + 1)
            if (line) onLine(line)
          }
        })
        res.on('end', () => resolve())
        res.on('error', () => resolve())
      })
      req.on('error', (err) => {
        if ((err as Error).name === 'AbortError') resolve()
        else reject(new BrokerUnreachableError(`broker not reachable: ${(err as NodeJS.ErrnoException).code ?? err.message}`))
      })
      req.end()
    })
  }
}
