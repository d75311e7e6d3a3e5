/**
 * Where the home's running broker listens: `<home>/broker.json`, written atomically by
 * `edgemq broker start` as `{ "pid": n, "host": "127.0.0.1", "ports": { "mqtt": 1883, "mqtts": 8883, "control": n } }`.
 * Clients only read it; a missing, unreadable or stale file means "use the defaults" (1883/8883).
 */
import { readFileSync } from 'node:fs'

import { homePaths } from '../config/home.js'
import { pidAlive } from '../util/fs.js'

export interface BrokerPorts {
  mqtt?: number
  mqtts?: number
  control?: number
}

export interface BrokerState {
  pid?: number
  host?: string
  ports: BrokerPorts
}

/** IoT Edge's well-known ports (the seed's -p 1883 / 8883). */
export const DEFAULT_MQTT_PORT = 1883
export const DEFAULT_MQTTS_PORT = 8883

const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536

/** Validates the parsed JSON; anything malformed is treated as absent rather than half-trusted. */
export function parseBrokerState(json: unknown): BrokerState | undefined {
  if (typeof json !== 'object' || json === null) return undefined
  const o = json as Record<string, unknown>
  const rawPorts = (typeof o.ports === 'object' && o.ports !== null ? o.ports : {}) as Record<string, unknown>
  const ports: BrokerPorts = {}
  for (const k of ['mqtt', 'mqtts', 'control'] as const) if (isPort(rawPorts[k])) ports[k] = rawPorts[k] as number
  if (ports.mqtt === undefined && ports.mqtts === undefined) return undefined
  return {
    pid: typeof o.pid === 'number' && Number.isInteger(o.pid) ? o.pid : undefined,
    host: typeof o.host === 'string' && o.host !== '' ? o.host : undefined,
    ports,
  }
}

/**
 * The running broker's state, or undefined when there is none. A file left behind by a broker
 * that died (kill -9) names a pid that no longer exists: treat it as absent, so we fall back to
 * the defaults instead of dialling a port some other program may now own.
 */
export function readBrokerState(home: string): BrokerState | undefined {
  let text: string
  try {
    text = readFileSync(homePaths(home).brokerState, 'utf8')
  } catch {
    return undefined
  }
  let state: BrokerState | undefined
  try {
    state = parseBrokerState(JSON.parse(text))
  } catch {
    return undefined
  }
  if (state?.pid !== undefined && !pidAlive(state.pid)) return undefined
  return state
}

/** Plain and TLS ports with the IoT Edge defaults filled in. */
export function brokerPorts(state: BrokerState | undefined): { host: string; mqtt: number; mqtts: number } {
  return {
    host: state?.host && state.host !== '0.0.0.0' && state.host !== '::' ? state.host : '127.0.0.1',
    mqtt: state?.ports.mqtt ?? DEFAULT_MQTT_PORT,
    mqtts: state?.ports.mqtts ?? DEFAULT_MQTTS_PORT,
  }
}
