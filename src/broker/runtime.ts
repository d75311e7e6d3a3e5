/**
 * `<home>/broker.json`: the running broker's pid and ports, so CLI commands find it
 * (pub/sub --device, twin/method/c2d/monitor via the control API, broker status/stop).
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'

export interface BrokerRuntime {
  pid: number
  host: string
  ports: { mqtt?: number; mqtts?: number; control: number; rest?: number; workload?: number }
  hub: string
  startedAt: string
  inMemory?: boolean
  /** Cluster node id (`broker start --cluster`): several nodes may share a home. */
  node?: string
}

export function writeRuntime(file: string, rt: BrokerRuntime): void {
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(rt, null, 2), { mode: 0o600 })
  renameSync(tmp, file)
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The runtime record of a live broker, or undefined (missing file, stale pid, garbage). */
export function readRuntime(file: string): BrokerRuntime | undefined {
  try {
    const rt = JSON.parse(readFileSync(file, 'utf8')) as BrokerRuntime
    if (typeof rt.pid !== 'number' || !rt.ports || typeof rt.ports.control !== 'number') return undefined
    return isAlive(rt.pid) ? rt : undefined
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
