/**
 * The built-in endpoint's connection string, as `az iot hub connection-string show --eh` prints it:
 * `Endpoint=sb://<host>/;SharedAccessKeyName=<policy>;SharedAccessKey=<key>;EntityPath=<hub>`.
 * The emulator form adds `UseDevelopmentEmulator=true`, which makes `@azure/event-hubs` (core-amqp)
 * dial plain AMQP, on 5672 unless the endpoint names a port; the TLS form dials 5671 (hub CA).
 */
import type { Registry } from '../registry/registry.js'

export const AMQPS_DEFAULT_PORT = 5671
export const AMQP_DEFAULT_PORT = 5672

export interface EventHubConnectionStringOptions {
  /** Shared access policy (default iothubowner; it needs ServiceConnect to read). */
  policy?: string
  keyType?: 'primary' | 'secondary'
  /** Host the client dials (default localhost, which the hub's server certificate names). */
  host?: string
  /** Port, written into the endpoint when it is not the form's default. */
  port?: number
  /** Plain AMQP with `UseDevelopmentEmulator=true` (default: TLS). */
  emulator?: boolean
}

export function eventHubConnectionString(registry: Registry, hubName: string, opts: EventHubConnectionStringOptions = {}): string {
  const p = registry.policy(opts.policy)
  const key = opts.keyType === 'secondary' ? p.secondaryKey : p.primaryKey
  const defaultPort = opts.emulator ? AMQP_DEFAULT_PORT : AMQPS_DEFAULT_PORT
  const port = opts.port !== undefined && opts.port !== defaultPort ? `:${opts.port}` : ''
  const endpoint = `sb://${opts.host ?? 'localhost'}${port}/`
  return `Endpoint=${endpoint};SharedAccessKeyName=${p.name};SharedAccessKey=${key};EntityPath=${hubName}${opts.emulator ? ';UseDevelopmentEmulator=true' : ''}`
}
