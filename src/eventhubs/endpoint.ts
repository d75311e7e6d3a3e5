/**
 * The built-in `events` endpoint (IoT Hub's Event Hubs-compatible endpoint): the event log the
 * hub appends telemetry to, its consumer groups, and the answers `$management` gives. The AMQP
 * side (amqp.ts) is a thin adapter over this.
 */
import type { Logger } from 'pino'

import { NotFoundError } from '../errors.js'
import type { BrokerSettings, HubRecord, Store } from '../registry/types.js'
import { findConsumerGroup } from './consumer-groups.js'
import { EventLog } from './log.js'
import type { EventInput, PartitionInfo } from './types.js'

export interface BuiltinEndpointOptions {
  /** The log file, or ':memory:'. */
  file: string
  settings: Pick<BrokerSettings, 'eventHubPartitions' | 'eventRetentionSecs' | 'eventRetentionCount' | 'eventRetentionBytes'>
  /** The hub record as the broker follows it (consumer groups, name, creation time). */
  hub: HubRecord
  store: Store
  log: Logger
}

/** Telemetry as the hub emits it (broker/host.ts HubEvent, structurally: no import of the broker). */
export interface TelemetryEvent {
  deviceId: string
  moduleId?: string
  properties: Record<string, string>
  systemProperties: EventInput['systemProperties']
  payload: Buffer
  enqueuedTime: string
  authMethod?: string
  generationId?: string
}

/** `com.microsoft:eventhub` READ. */
export interface EventHubInfo {
  name: string
  createdAt: number
  partitionCount: number
  partitionIds: string[]
}

export class BuiltinEndpoint {
  readonly log: EventLog
  /** Appends that failed (disk full, …): logged, counted, never a crash. */
  failedAppends = 0
  private flushScheduled = false
  private waiters: (() => void)[] = []

  constructor(private readonly opts: BuiltinEndpointOptions) {
    const { settings } = opts
    this.log = new EventLog({ file: opts.file, partitionCount: settings.eventHubPartitions, retentionSecs: settings.eventRetentionSecs, retentionCount: settings.eventRetentionCount, retentionBytes: settings.eventRetentionBytes })
    if (this.log.partitionCount !== this.log.requestedPartitionCount) {
      opts.log.warn({ stored: this.log.partitionCount, setting: this.log.requestedPartitionCount }, 'event log keeps its partition count (devices must stay in their partition); empty eventhubs.db to change it')
    }
  }

  get name(): string {
    return this.opts.hub.name
  }

  /** The hub's telemetry event (what `monitor` sees), queued for the log's next commit (see whenStored). */
  appendTelemetry(ev: TelemetryEvent): void {
    const { deviceId, moduleId, properties, systemProperties, payload, enqueuedTime, authMethod, generationId } = ev
    this.enqueue({ deviceId, moduleId, properties, systemProperties, body: payload, enqueuedTime: Date.parse(enqueuedTime), authMethod, generationId })
  }

  /**
   * Queues telemetry for the built-in endpoint. Group commit: everything queued in one turn of the
   * event loop is committed in one transaction at setImmediate, and whenStored() callbacks run
   * after it, so the PUBACKs they release follow the commit (acknowledged ⇒ in the WAL).
   */
  enqueue(input: EventInput): void {
    try {
      this.log.enqueue(input)
    } catch (err) {
      this.failed(1, input.deviceId, err as Error)
      return
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
  }

  /** Calls `cb` once every event queued so far is committed (or failed, logged): at once when none is waiting. */
  whenStored(cb: () => void): void {
    if (this.log.pending === 0) return cb()
    this.waiters.push(cb)
  }

  /** Commits what is queued and releases the callbacks waiting for it. */
  flush(): void {
    this.flushScheduled = false
    const n = this.log.pending
    try {
      this.log.flush()
    } catch (err) {
      this.failed(n, undefined, err as Error)
    }
    const waiters = this.waiters
    this.waiters = []
    for (const cb of waiters) cb()
  }

  /** Appends that failed (disk full, …) are logged and counted, never a crash; the publish itself goes on. */
  private failed(n: number, deviceId: string | undefined, err: Error): void {
    this.failedAppends += n
    this.opts.log.warn({ device: deviceId, events: n, err: err.message }, 'telemetry not stored on the built-in endpoint')
  }

  eventHubInfo(): EventHubInfo {
    const n = this.log.partitionCount
    return { name: this.name, createdAt: Date.parse(this.opts.hub.createdAt), partitionCount: n, partitionIds: Array.from({ length: n }, (_, i) => String(i)) }
  }

  /** A partition id as a client sends it ('0'…'n-1'); NotFoundError otherwise. */
  partition(id: string): number {
    const p = /^\d+$/.test(id) ? Number(id) : NaN
    if (!(p >= 0 && p < this.log.partitionCount)) throw new NotFoundError(`partition "${id}" does not exist on "${this.name}" (partitions 0–${this.log.partitionCount - 1})`)
    return p
  }

  partitionInfo(id: string): PartitionInfo {
    return this.log.partitionInfo(this.partition(id))
  }

  /**
   * The consumer group's canonical name (case-insensitive, as Event Hubs); a group this broker does
   * not know yet is looked up in the store (another process may have just created it).
   */
  async consumerGroup(name: string): Promise<string> {
    const known = findConsumerGroup(this.opts.hub, name)
    if (known) return known.name
    const fresh = await this.opts.store.getHub()
    const found = fresh && findConsumerGroup(fresh, name)
    if (!found) throw new NotFoundError(`consumer group "${name}" does not exist on "${this.name}"`, 'create it with `edgemq hub consumer-group create --name …`')
    return found.name
  }

  close(): void {
    this.flush()
    this.log.close()
  }
}
