/**
 * Reading the built-in Event Hubs-compatible endpoint with the unmodified `@azure/event-hubs`
 * client, for tests and bench (no node:test import): collect N events from a subscription.
 */
import { EventHubConsumerClient, type EventPosition, type ReceivedEventData, type Subscription } from '@azure/event-hubs'

export { EventHubConsumerClient, earliestEventPosition, latestEventPosition } from '@azure/event-hubs'
export type { ReceivedEventData } from '@azure/event-hubs'

export interface Received {
  partitionId: string
  event: ReceivedEventData
  /** Date.now() when the client handed it over. */
  at: number
}

export interface Collector {
  /** Resolves with the first `n` events (all partitions, arrival order); rejects after `timeoutMs`. */
  done: Promise<Received[]>
  /** Everything received so far. */
  received: Received[]
  /** Errors the subscription reported (the SDK retries on its own). */
  errors: Error[]
  /** The first error the subscription reports. */
  firstError: Promise<Error>
  close(): Promise<void>
}

/** Subscribes (all partitions, or one) from `startPosition` until `n` events arrived. */
export function collectEvents(
  client: EventHubConsumerClient,
  n: number,
  opts: { startPosition: EventPosition; partitionId?: string; timeoutMs?: number; maxBatchSize?: number; ownerLevel?: number; onEvent?: (r: Received) => void },
): Collector {
  const received: Received[] = []
  const errors: Error[] = []
  let settle: { resolve(r: Received[]): void; reject(e: Error): void } | undefined
  const done = new Promise<Received[]>((resolve, reject) => (settle = { resolve, reject }))
  // Not every caller waits for `done`; a rejection nobody waits for must not fail the run.
  done.catch(() => undefined)
  let onFirstError: (e: Error) => void = () => undefined
  const firstError = new Promise<Error>((resolve) => (onFirstError = resolve))
  const timer = setTimeout(
    () => settle?.reject(new Error(`received ${received.length} of ${n} events within ${opts.timeoutMs ?? 20_000} ms; errors: ${errors.map((e) => e.message).join('; ') || 'none'}`)),
    opts.timeoutMs ?? 20_000,
  )
  const handlers = {
    processEvents: async (events: ReceivedEventData[], context: { partitionId: string }) => {
      for (const event of events) {
        const r = { partitionId: context.partitionId, event, at: Date.now() }
        received.push(r)
        opts.onEvent?.(r)
      }
      if (received.length >= n) {
        clearTimeout(timer)
        settle?.resolve(received.slice(0, n))
      }
    },
    processError: async (err: Error) => {
      errors.push(err)
      onFirstError(err)
    },
  }
  const options = { startPosition: opts.startPosition, maxBatchSize: opts.maxBatchSize ?? 100, maxWaitTimeInSeconds: 5, ...(opts.ownerLevel !== undefined ? { ownerLevel: opts.ownerLevel } : {}) }
  const subscription: Subscription = opts.partitionId === undefined ? client.subscribe(handlers, options) : client.subscribe(opts.partitionId, handlers, options)
  return {
    done,
    received,
    errors,
    firstError,
    async close() {
      clearTimeout(timer)
      await subscription.close()
    },
  }
}
