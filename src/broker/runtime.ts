/**
 * `<home>/broker.json`: the running broker's pid and ports, so CLI commands find it
 * (pub/sub --device, twin/method/c2d/monitor via the control API, broker status/stop).
 */
import { readFileSync, unlinkSync } from 'node:fs'

import { pidAlive, writeFileAtomicSync } from '../util/fs.js'

export interface BrokerRuntime {
  pid: number
  host: string
  ports: { mqtt?: number; mqtts?: number; control: number; rest?: number; ws?: number; amqps?: number; amqp?: number; workload?: number }
  hub: string
  startedAt: string
  inMemory?: boolean
  /** Cluster node id (`broker start --cluster`): several nodes may share a home. */
  node?: string
}

export function writeRuntime(file: string, rt: BrokerRuntime): void {
  writeFileAtomicSync(file, JSON.stringify(rt, null, 2), 0o600)
}

/** The runtime record of a live broker, or undefined (missing file, stale pid, garbage). */
export function readRuntime(file: string): BrokerRuntime | undefined {
  try {
    const rt = JSON.parse(readFileSync(file, 'utf8')) as BrokerRuntime
    if (typeof rt.pid !== 'number' || !rt.ports || typeof rt.ports.control !== 'number') return undefined
    return pidAlive(rt.pid) ? rt : undefined
  } catch {
    return undefined
  }
}

export function removeRuntime(file: string, pid = process.pid): void {
  try {
    const rt = JSON.parse(readFileSync(file, 'utf8')) as BrokerRuntime
    if (rt.pid === pid) unlinkSync(file)
  } catch {
    /* already gone */
  }
}
