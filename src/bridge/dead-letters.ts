/**
 * The bridge's dead-letter store, as the commands and the control API see it: messages the parent
 * refused (see bridge.ts), kept in `<home>/forward.db` next to the store-and-forward queue.
 *
 *   list   — oldest first, payload as text (or base64 when it is not UTF-8)
 *   retry  — back to the tail of the queue (attempts reset, TTL counted from now)
 *   purge  — deleted
 *
 * One interface, three ways in: the broker's own queue (`queueDeadLetters`), a running broker's
 * control API (`controlDeadLetters`, what the commands use when a broker runs: its counters stay
 * right), and the home's forward.db when none runs (`openDeadLetters` picks).
 */
import { existsSync } from 'node:fs'

import type { HubContext } from '../config/home.js'
import { UsageError } from '../errors.js'
import { ControlClient } from '../service/control-client.js'
import { ForwardQueue, type DeadLetterRow } from './queue.js'

export interface DeadLetter {
  id: number
  /** The remote topic the parent refused. */
  topic: string
  /** UTF-8 text, or base64 when the payload is not valid UTF-8 (see payloadEncoding). */
  payload: string
  payloadEncoding: 'utf8' | 'base64'
  bytes: number
  qos: 0 | 1
  retain: boolean
  /** Deliveries that failed before it was dead-lettered. */
  attempts: number
  reason: string
  /** The local topic an `out` rule mapped it from. */
  localTopic?: string
  enqueuedAt: string
  deadLetteredAt: string
}

export interface DeadLetterPage {
  /** Dead letters in the store (not only those listed). */
  total: number
  items: DeadLetter[]
}

export interface DeadLetterOps {
  list(opts?: { limit?: number; afterId?: number }): Promise<DeadLetterPage>
  /** All dead letters, or those in `ids`, back to the tail of the queue. */
  retry(ids?: number[]): Promise<{ requeued: number; ids: number[] }>
  /** All dead letters, or those in `ids`, deleted. */
  purge(ids?: number[]): Promise<{ purged: number }>
}

export function deadLetterView(r: DeadLetterRow): DeadLetter {
  const text = r.payload.toString('utf8')
  const utf8 = Buffer.from(text, 'utf8').equals(r.payload)
  return {
    id: r.id,
    topic: r.topic,
    payload: utf8 ? text : r.payload.toString('base64'),
    payloadEncoding: utf8 ? 'utf8' : 'base64',
    bytes: r.payload.length,
    qos: r.qos,
    retain: r.retain,
    attempts: r.attempts,
    reason: r.reason,
    ...(r.localTopic !== undefined ? { localTopic: r.localTopic } : {}),
    enqueuedAt: new Date(r.enqueuedAt).toISOString(),
    deadLetteredAt: new Date(r.deadAt).toISOString(),
  }
}

/** Validates the ids a command or a request names. */
export function parseIds(ids: unknown): number[] | undefined {
  if (ids === undefined || ids === null) return undefined
  if (!Array.isArray(ids) || !ids.every((i) => Number.isSafeInteger(i) && (i as number) > 0)) throw new UsageError('ids must be an array of dead-letter ids (positive integers)')
  return ids as number[]
}

function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) throw new UsageError(`limit must be a positive integer, got ${limit}`)
}

/** Over a ForwardQueue. `onChange` runs after a retry or purge changed anything (the bridge drains, reports). */
export function queueDeadLetters(queue: ForwardQueue, onChange: () => void = () => undefined): DeadLetterOps {
  return {
    async list(opts = {}) {
      checkLimit(opts.limit)
      return { total: queue.deadLettered, items: queue.listDead({ limit: opts.limit, afterId: opts.afterId }).map(deadLetterView) }
    },
    async retry(ids) {
      const done = queue.retryDead(parseIds(ids))
      if (done.length) onChange()
      return { requeued: done.length, ids: done }
    },
    async purge(ids) {
      const purged = queue.purgeDead(parseIds(ids))
      if (purged) onChange()
      return { purged }
    },
  }
}

export const DEAD_LETTERS_PATH = '/edgemq/bridge/dead-letters'

/** Through a running broker's control API (src/broker/control.ts). */
export function controlDeadLetters(client: ControlClient): DeadLetterOps {
  return {
    list(opts = {}) {
      checkLimit(opts.limit)
      const q = new URLSearchParams()
      if (opts.limit !== undefined) q.set('limit', String(opts.limit))
      if (opts.afterId !== undefined) q.set('afterId', String(opts.afterId))
      const qs = q.toString()
      return client.call<DeadLetterPage>('GET', DEAD_LETTERS_PATH + (qs ? `?${qs}` : ''))
    },
    retry(ids) {
      return client.call('POST', `${DEAD_LETTERS_PATH}/retry`, ids ? { ids } : {})
    },
    purge(ids) {
      return client.call('POST', `${DEAD_LETTERS_PATH}/purge`, ids ? { ids } : {})
    },
  }
}

const EMPTY: DeadLetterOps = {
  list: async () => ({ total: 0, items: [] }),
  retry: async () => ({ requeued: 0, ids: [] }),
  purge: async () => ({ purged: 0 }),
}

/**
 * The dead letters of a home: through its running broker when one runs (so the broker's queue,
 * counters and `$edgeHub` reported state follow at once), else straight from `<home>/forward.db`
 * (a retried message then waits in the queue for the next `broker start`). `via` says which.
 */
export function openDeadLetters(ctx: HubContext): { ops: DeadLetterOps; via: 'broker' | 'store'; close(): void } {
  const control = ControlClient.tryConnect(ctx.home, ctx.hub)
  if (control) return { ops: controlDeadLetters(control), via: 'broker', close: () => undefined }
  // No forward.db yet: nothing was ever queued here, and a listing must not create one.
  if (!existsSync(ctx.paths.forward)) return { ops: EMPTY, via: 'store', close: () => undefined }
  const queue = new ForwardQueue(ctx.paths.forward)
  return { ops: queueDeadLetters(queue), via: 'store', close: () => queue.close() }
}
