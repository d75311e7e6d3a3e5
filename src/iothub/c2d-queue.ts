/**
 * IoT Hub's per-device cloud-to-device queue (PROTOCOL.md §4, issue 17): a C2D message for a
 * device that cannot take it now (not connected, or not subscribed to
 * `devices/<id>/messages/devicebound/#`, and no persistent session that would keep it) waits here,
 * whatever the device's MQTT session, and is delivered on its next subscribe. As IoT Hub: at most
 * 50 messages per device (the 51st is refused, DeviceMaximumQueueDepthExceeded), each with a
 * time to live (default 1 hour, or the message's own `$.exp` expiry); expired messages are
 * dropped, never delivered. Pure: the clock is injected.
 */
import { QueueFullError } from '../errors.js'

/** IoT Hub's maximum C2D queue depth per device. */
export const C2D_MAX_QUEUE_DEPTH = 50
/** IoT Hub's default C2D time to live (`cloudToDevice.defaultTtlAsIso8601` = PT1H). */
export const C2D_DEFAULT_TTL_MS = 60 * 60 * 1000

export interface QueuedC2d {
  messageId: string
  /** The full devicebound topic, property bag included. */
  topic: string
  payload: Buffer
  enqueuedAt: number
  expiresAt: number
}

export interface C2dQueueOptions {
  maxDepth?: number
  defaultTtlMs?: number
  now?: () => number
}

export class C2dQueue {
  private readonly queues = new Map<string, QueuedC2d[]>()
  private readonly maxDepth: number
  private readonly defaultTtlMs: number
  private readonly now: () => number
  /** Messages dropped because they expired before delivery (for status). */
  expired = 0

  constructor(opts: C2dQueueOptions = {}) {
    this.maxDepth = opts.maxDepth ?? C2D_MAX_QUEUE_DEPTH
    this.defaultTtlMs = opts.defaultTtlMs ?? C2D_DEFAULT_TTL_MS
    this.now = opts.now ?? Date.now
  }

  /**
   * Queues a message for `deviceId`. `expiryTimeUtc` (the message's `$.exp`, ISO 8601) overrides
   * the default TTL. Throws QueueFullError when the device already has `maxDepth` live messages.
   */
  enqueue(deviceId: string, msg: { messageId: string; topic: string; payload: Buffer; expiryTimeUtc?: string }): QueuedC2d {
    const q = this.live(deviceId)
    if (q.length >= this.maxDepth) {
      throw new QueueFullError(`the cloud-to-device queue of device "${deviceId}" is full (${this.maxDepth} messages)`, 'the device receives them when it subscribes to devices/<id>/messages/devicebound/#; or wait for them to expire')
    }
    const now = this.now()
    const explicit = msg.expiryTimeUtc === undefined ? NaN : Date.parse(msg.expiryTimeUtc)
    const item: QueuedC2d = { messageId: msg.messageId, topic: msg.topic, payload: msg.payload, enqueuedAt: now, expiresAt: Number.isFinite(explicit) ? explicit : now + this.defaultTtlMs }
    q.push(item)
    this.queues.set(deviceId, q)
    return item
  }

  /** Removes and returns the device's live messages, oldest first (expired ones are dropped). */
  take(deviceId: string): QueuedC2d[] {
    const q = this.live(deviceId)
    this.queues.delete(deviceId)
    return q
  }

  /** Live messages waiting for the device. */
  depth(deviceId: string): number {
    const q = this.live(deviceId)
    if (q.length === 0) this.queues.delete(deviceId)
    else this.queues.set(deviceId, q)
    return q.length
  }

  /** Drops a device's queue (device deleted; `c2d-message purge`). Returns how many were dropped. */
  purge(deviceId: string): number {
    const n = this.live(deviceId).length
    this.queues.delete(deviceId)
    return n
  }

  private live(deviceId: string): QueuedC2d[] {
    const q = this.queues.get(deviceId) ?? []
    const now = this.now()
    const kept = q.filter((m) => m.expiresAt > now)
    this.expired += q.length - kept.length
    return kept
  }
}
