/**
 * IoT Hub's per-device cloud-to-device queue (PROTOCOL.md §4, issue 17): a C2D message for a
 * device that cannot take it now (not connected, or not subscribed to
 * `devices/<id>/messages/devicebound/#`, and no persistent session that would keep it) waits here,
 * whatever the device's MQTT session, and is delivered on its next subscribe. As IoT Hub: at most
 * 50 messages per device (the 51st is refused, DeviceMaximumQueueDepthExceeded), each with a
 * time to live (default 1 hour, or the message's own `$.exp` expiry); expired messages are
 * dropped, never delivered. Pure: the clock is injected.
 *
 * A message can also be taken under a lock, as IoT Hub's HTTPS device API does (`az iot device
 * c2d-message receive`): it stays queued, invisible for the lock's length, until it is completed
 * (gone), rejected (gone, feedback Rejected) or abandoned (visible again; after its 10th delivery it
 * is gone instead, feedback DeliveryCountExceeded). A lock that lapses makes it visible again.
 */
import { randomUUID } from 'node:crypto'

import { PreconditionFailedError, QueueFullError } from '../errors.js'
import type { SystemProperties } from './propertyBag.js'

/** IoT Hub's maximum C2D queue depth per device. */
export const C2D_MAX_QUEUE_DEPTH = 50
/** IoT Hub's default C2D time to live (`cloudToDevice.defaultTtlAsIso8601` = PT1H). */
export const C2D_DEFAULT_TTL_MS = 60 * 60 * 1000
/** IoT Hub's `cloudToDevice.maxDeliveryCount` default. */
export const C2D_MAX_DELIVERY_COUNT = 10
/** IoT Hub's lock timeout for HTTPS receives (az `--lock-timeout` default). */
export const C2D_DEFAULT_LOCK_MS = 60_000

export type C2dSettlement = 'complete' | 'abandon' | 'reject'

export interface QueuedC2d {
  messageId: string
  /** The full devicebound topic, property bag included. */
  topic: string
  payload: Buffer
  enqueuedAt: number
  expiresAt: number
  /** Times it was handed out under a lock. */
  deliveryCount: number
  /** The lock (IoT Hub's etag / lock token) while one is held. */
  lockToken?: string
  lockedUntil?: number
}

/** What settling a locked message did: the message, and the feedback status it ends with (none when abandoned back). */
export interface C2dSettled {
  message: QueuedC2d
  outcome?: 'Success' | 'Rejected' | 'DeliveryCountExceeded'
}

export interface C2dQueueOptions {
  maxDepth?: number
  defaultTtlMs?: number
  maxDeliveryCount?: number
  now?: () => number
}

export class C2dQueue {
  private readonly queues = new Map<string, QueuedC2d[]>()
  private readonly maxDepth: number
  private readonly defaultTtlMs: number
  private readonly maxDeliveryCount: number
  private readonly now: () => number
  /** Messages dropped because they expired before delivery (for status). */
  expired = 0

  constructor(opts: C2dQueueOptions = {}) {
    this.maxDepth = opts.maxDepth ?? C2D_MAX_QUEUE_DEPTH
    this.defaultTtlMs = opts.defaultTtlMs ?? C2D_DEFAULT_TTL_MS
    this.maxDeliveryCount = opts.maxDeliveryCount ?? C2D_MAX_DELIVERY_COUNT
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
    const item: QueuedC2d = { messageId: msg.messageId, topic: msg.topic, payload: msg.payload, enqueuedAt: now, expiresAt: Number.isFinite(explicit) ? explicit : now + this.defaultTtlMs, deliveryCount: 0 }
    q.push(item)
    this.queues.set(deviceId, q)
    return item
  }

  /** Removes and returns the device's live messages that are not locked, oldest first (expired ones are dropped). */
  take(deviceId: string): QueuedC2d[] {
    const q = this.live(deviceId)
    const now = this.now()
    const free = q.filter((m) => !this.locked(m, now))
    const held = q.filter((m) => this.locked(m, now))
    if (held.length > 0) this.queues.set(deviceId, held)
    else this.queues.delete(deviceId)
    return free
  }

  /** The oldest live message that is not locked, now locked for `lockMs` (its lock token is new), or undefined. */
  lock(deviceId: string, lockMs = C2D_DEFAULT_LOCK_MS): QueuedC2d | undefined {
    const q = this.live(deviceId)
    this.queues.set(deviceId, q)
    const now = this.now()
    const m = q.find((x) => !this.locked(x, now))
    if (!m) return undefined
    m.lockToken = randomUUID()
    m.lockedUntil = now + lockMs
    m.deliveryCount++
    return m
  }

  /** Completes, rejects or abandons the message locked with `lockToken`; a lapsed or unknown lock is 412, as on IoT Hub. */
  settle(deviceId: string, lockToken: string, how: C2dSettlement): C2dSettled {
    const q = this.live(deviceId)
    this.queues.set(deviceId, q)
    const now = this.now()
    const i = q.findIndex((m) => m.lockToken === lockToken && this.locked(m, now))
    if (i < 0) {
      throw new PreconditionFailedError(`no cloud-to-device message of device "${deviceId}" is locked with ${lockToken}`, 'the lock lapsed or the message was settled already: receive it again')
    }
    const m = q[i]
    // Abandoned past the delivery limit, a message is gone as if dead-lettered.
    const outcome: C2dSettled['outcome'] = how === 'complete' ? 'Success' : how === 'reject' ? 'Rejected' : m.deliveryCount >= this.maxDeliveryCount ? 'DeliveryCountExceeded' : undefined
    if (outcome) {
      q.splice(i, 1)
      if (q.length === 0) this.queues.delete(deviceId)
      return { message: m, outcome }
    }
    m.lockToken = undefined
    m.lockedUntil = undefined
    return { message: m }
  }

  private locked(m: QueuedC2d, now: number): boolean {
    return m.lockedUntil !== undefined && m.lockedUntil > now
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

/** A locked message as `az iot device c2d-message receive` prints it: `{data, etag, properties: {app, system}}`. */
export interface C2dReceived {
  data: string
  etag: string
  properties: { app: Record<string, string>; system: Record<string, string> }
}

/** The az view of a locked message; `bag` is its topic's property bag (application and system properties). */
export function c2dReceivedView(m: QueuedC2d, bag: { properties: Record<string, string>; systemProperties: SystemProperties }): C2dReceived {
  const sys = bag.systemProperties
  const system: Record<string, string> = {
    'iothub-messageid': m.messageId,
    'iothub-enqueuedtime': new Date(m.enqueuedAt).toISOString(),
    'iothub-expiry': new Date(m.expiresAt).toISOString(),
    'iothub-deliverycount': String(m.deliveryCount - 1),
  }
  if (sys.correlationId) system['iothub-correlationid'] = sys.correlationId
  if (sys.to) system['iothub-to'] = sys.to
  if (sys.userId) system['iothub-userid'] = sys.userId
  if (sys.contentType) system['iothub-contenttype'] = sys.contentType
  if (sys.contentEncoding) system['iothub-contentencoding'] = sys.contentEncoding
  return { data: m.payload.toString('utf8'), etag: m.lockToken ?? '', properties: { app: { ...bag.properties }, system } }
}
