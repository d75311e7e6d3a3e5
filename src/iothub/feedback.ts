/**
 * IoT Hub's cloud-to-device delivery feedback: a C2D message sent with `ack` = positive / negative /
 * full gets a feedback record when the device completes it (Success), or it expires (Expired), or it
 * is rejected (Rejected) or delivered too often (DeliveryCountExceeded); positive asks for the first,
 * negative for the others, full for all. Records wait in one hub-wide queue that the service reads
 * (`/messages/serviceBound/feedback`, `hub monitor-feedback`): a reader takes a batch (one message
 * whose body is a JSON array of records), and the batch is gone once accepted, back at the head of
 * the queue when released. Bounded: at most `maxRecords` wait (the oldest go), each for `ttlMs`
 * (IoT Hub's feedback TTL, 1 hour). Pure: the clock is injected.
 */
import { EventEmitter } from 'node:events'

export type FeedbackAck = 'none' | 'positive' | 'negative' | 'full'
export type FeedbackStatus = 'Success' | 'Expired' | 'DeliveryCountExceeded' | 'Rejected'

export const FEEDBACK_CONTENT_TYPE = 'application/vnd.microsoft.iothub.feedback.json'

/** IoT Hub's feedback record, field names as on the wire. */
export interface FeedbackRecord {
  originalMessageId: string
  description: string
  deviceGenerationId: string
  deviceId: string
  enqueuedTimeUtc: string
  statusCode: FeedbackStatus
}

export interface FeedbackBatch {
  /** Settles the batch (accept / release). */
  lockToken: string
  records: FeedbackRecord[]
  enqueuedTimeUtc: string
}

const DESCRIPTIONS: Record<FeedbackStatus, string> = {
  Success: 'Success',
  Expired: 'Message Expired',
  DeliveryCountExceeded: 'Message Delivery Count Exceeded',
  Rejected: 'Message Rejected',
}

/** Whether a message sent with `ack` asks for a record with `status`. */
export function wantsFeedback(ack: FeedbackAck | undefined, status: FeedbackStatus): boolean {
  if (ack === 'full') return true
  if (ack === 'positive') return status === 'Success'
  if (ack === 'negative') return status !== 'Success'
  return false
}

/** The `ack` application property as sent (IoT Hub accepts these four, case-insensitively). */
export function parseFeedbackAck(v: unknown): FeedbackAck | undefined {
  if (typeof v !== 'string') return undefined
  const a = v.toLowerCase()
  return a === 'none' || a === 'positive' || a === 'negative' || a === 'full' ? a : undefined
}

export interface FeedbackQueueOptions {
  maxRecords?: number
  ttlMs?: number
  /** Records per batch at most (IoT Hub batches them; 64 keeps a message small). */
  batchSize?: number
  now?: () => number
}

interface Waiting {
  record: FeedbackRecord
  at: number
}

export class FeedbackQueue {
  /** 'available': records were added (readers waiting for them take a batch). */
  readonly events = new EventEmitter()
  private queue: Waiting[] = []
  private readonly locked = new Map<string, Waiting[]>()
  private nextLock = 1
  private readonly maxRecords: number
  private readonly ttlMs: number
  private readonly batchSize: number
  private readonly now: () => number
  /** Records dropped because the queue was full or they outlived the TTL. */
  dropped = 0

  constructor(opts: FeedbackQueueOptions = {}) {
    this.maxRecords = opts.maxRecords ?? 10_000
    this.ttlMs = opts.ttlMs ?? 60 * 60 * 1000
    this.batchSize = opts.batchSize ?? 64
    this.now = opts.now ?? Date.now
    this.events.setMaxListeners(0)
  }

  /** Adds the record for a message's outcome. */
  add(msg: { messageId: string; deviceId: string; deviceGenerationId: string }, status: FeedbackStatus): FeedbackRecord {
    const record: FeedbackRecord = {
      originalMessageId: msg.messageId,
      description: DESCRIPTIONS[status],
      deviceGenerationId: msg.deviceGenerationId,
      deviceId: msg.deviceId,
      enqueuedTimeUtc: new Date(this.now()).toISOString(),
      statusCode: status,
    }
    this.queue.push({ record, at: this.now() })
    if (this.queue.length > this.maxRecords) {
      this.dropped += this.queue.length - this.maxRecords
      this.queue.splice(0, this.queue.length - this.maxRecords)
    }
    this.events.emit('available')
    return record
  }

  /** Records waiting (not taken). */
  get depth(): number {
    this.expire()
    return this.queue.length
  }

  /** Takes the oldest records as one batch, locked until settled; undefined when none wait. */
  take(filter?: (r: FeedbackRecord) => boolean): FeedbackBatch | undefined {
    this.expire()
    const picked: Waiting[] = []
    const kept: Waiting[] = []
    for (const w of this.queue) (picked.length < this.batchSize && (!filter || filter(w.record)) ? picked : kept).push(w)
    if (picked.length === 0) return undefined
    this.queue = kept
    const lockToken = String(this.nextLock++)
    this.locked.set(lockToken, picked)
    return { lockToken, records: picked.map((w) => w.record), enqueuedTimeUtc: new Date(this.now()).toISOString() }
  }

  /** Accepted: the batch is gone. Released (reader gone, abandoned): back at the head of the queue. */
  settle(lockToken: string, outcome: 'accept' | 'release'): void {
    const batch = this.locked.get(lockToken)
    if (!batch) return
    this.locked.delete(lockToken)
    if (outcome === 'release') {
      this.queue.unshift(...batch)
      this.events.emit('available')
    }
  }

  private expire(): void {
    const cutoff = this.now() - this.ttlMs
    const before = this.queue.length
    this.queue = this.queue.filter((w) => w.at > cutoff)
    this.dropped += before - this.queue.length
  }
}
