/**
 * Bounds against hostile and slow clients (issue 15): how many connections, how long and how large
 * before CONNECT, and a refusal log that says each reason once per interval instead of once per
 * attempt (a flood of refusals must not become a flood of log lines).
 */
import type { Socket } from 'node:net'

import type { Logger } from 'pino'

import { DEFAULT_BROKER_SETTINGS, type BrokerSettings } from '../registry/types.js'

/** The settings in force: the hub's (older hubs lack the newer keys) over the defaults, then overrides. */
export function brokerSettings(stored: Partial<BrokerSettings>, overrides: Partial<BrokerSettings> = {}): BrokerSettings {
  return { ...DEFAULT_BROKER_SETTINGS, ...stored, ...overrides }
}

/** Room for the topic (up to 64 KiB in MQTT) and the fixed header around a message of the hub's maximum. */
export const PACKET_HEADROOM = 64 * 1024 + 16

export type RefusalReason =
  | 'max-connections'
  | 'max-pending-connections'
  | 'packet-too-large'
  | 'bad-protocol-level'
  | 'client-id-too-long'
  | 'empty-client-id'
  | 'bad-will-topic'
  | 'max-subscriptions'
  | 'qos0-dropped'
  | 'event-reader-dropped'

/**
 * Counts every refusal and logs one line per reason per `intervalMs`, carrying how many were not
 * logged since the last line (`suppressed`).
 */
export class RefusalLog {
  readonly counts: Partial<Record<RefusalReason, number>> = {}
  private readonly last = new Map<RefusalReason, { at: number; suppressed: number }>()

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  note(reason: RefusalReason, fields: Record<string, unknown>, msg: string): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + 1
    const t = this.now()
    const seen = this.last.get(reason)
    if (seen && t - seen.at < this.intervalMs) {
      seen.suppressed++
      return
    }
    const suppressed = seen?.suppressed ?? 0
    this.last.set(reason, { at: t, suppressed: 0 })
    this.log.warn({ reason, ...fields, ...(suppressed ? { suppressed } : {}) }, msg)
  }
}

/** A client id as it may appear in a log line: never more than 64 characters of it. */
export function loggableId(id: string | null | undefined): string {
  if (!id) return ''
  return id.length > 64 ? `${id.slice(0, 64)}…(${id.length} chars)` : id
}

/**
 * Admits or refuses each new socket by the open and the pending (no accepted CONNECT yet) counts.
 * A socket leaves `pending` at `accepted()` or when it closes; `open` drops when it closes.
 */
export class ConnectionGate {
  private open = 0
  private readonly pending = new Set<Socket>()

  constructor(private readonly limits: () => Pick<BrokerSettings, 'maxConnections' | 'maxPendingConnections'>) {}

  /**
   * `refused`: this socket is over maxConnections. `evicted`: pending was full, so the oldest
   * pending socket was closed to make room (idle sockets cannot lock out a client that sends its
   * CONNECT at once; an attacker has to outpace every new client).
   */
  admit(socket: Socket): { refused?: RefusalReason; evicted?: Socket } {
    const { maxConnections, maxPendingConnections } = this.limits()
    let evicted: Socket | undefined
    if (this.pending.size >= maxPendingConnections) {
      evicted = this.pending.values().next().value as Socket
      this.pending.delete(evicted)
      evicted.destroy()
    }
    if (this.open - (evicted ? 1 : 0) >= maxConnections) return { refused: 'max-connections', evicted }
    this.open++
    this.pending.add(socket)
    socket.once('close', () => {
      this.open--
      this.pending.delete(socket)
    })
    return { evicted }
  }

  accepted(socket: Socket): void {
    this.pending.delete(socket)
  }

  get counts(): { open: number; pending: number } {
    return { open: this.open, pending: this.pending.size }
  }
}
