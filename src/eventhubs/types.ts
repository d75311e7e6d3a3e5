/**
 * The built-in Event Hubs-compatible endpoint's data model (issue 18, PROTOCOL.md §10): telemetry
 * the hub put on its built-in `events` endpoint, kept per partition with Event Hubs' sequence
 * numbers, offsets and enqueued times.
 */
import type { SystemProperties } from '../iothub/index.js'

/** Telemetry as it reaches the built-in endpoint. */
export interface EventInput {
  deviceId: string
  moduleId?: string
  /** How the sender authenticated (`sas`, `x509-thumbprint`, `x509-ca`); IoT Hub's `iothub-connection-auth-method`. */
  authMethod?: string
  /** The sender identity's generation id (`iothub-connection-auth-generation-id`). */
  generationId?: string
  properties: Record<string, string>
  systemProperties: SystemProperties
  body: Buffer
  /** Unix ms the hub received it; default now. */
  enqueuedTime?: number
}

/** An event in a partition of the log. */
export interface StoredEvent extends EventInput {
  partition: number
  sequenceNumber: number
  /** Position in the partition's log (strictly increasing; Event Hubs sends it as a string). */
  offset: number
  enqueuedTime: number
}

/** What `$management` answers for `com.microsoft:partition`. */
export interface PartitionInfo {
  partition: number
  /** The first retained sequence number (the next one to be written when the partition is empty). */
  beginSequenceNumber: number
  /** -1 before the first event ever. */
  lastSequenceNumber: number
  /** '-1' before the first event ever. */
  lastOffset: string
  /** Unix ms; 0 before the first event ever. */
  lastEnqueuedTime: number
  isEmpty: boolean
}

/** Where a receiver starts (the `apache.org:selector-filter:string` the client sends). */
export type StartPosition =
  | { kind: 'offset'; offset: number | 'latest'; inclusive: boolean }
  | { kind: 'sequence'; sequenceNumber: number; inclusive: boolean }
  | { kind: 'enqueued'; enqueuedTime: number }

export interface RetentionSettings {
  /** Events older than this are dropped. */
  retentionSecs: number
  /** At most this many events per partition are kept. */
  retentionCount: number
  /** At most about this many body bytes per partition are kept (the oldest go first). */
  retentionBytes?: number
}
