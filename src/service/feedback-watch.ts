/**
 * Reading C2D delivery feedback until a message's record arrives or time runs out: `hub
 * monitor-feedback [-w <id>]` and `c2d send --ack … --wait` (az `-w`) share it.
 */
import type { FeedbackRecord } from '../iothub/index.js'
import type { HubService } from './hub-service.js'

export interface WatchFeedbackOptions {
  /** Only this device's records (the others stay queued). */
  deviceId?: string
  /** Stop once this message id's record arrived. */
  waitOn?: string
  /** Stop after this many seconds (0 = never). */
  timeoutSecs: number
  onRecord(record: FeedbackRecord): void
  /** Stops it early (Ctrl-C). */
  signal?: AbortSignal
}

export async function watchFeedback(svc: HubService, opts: WatchFeedbackOptions): Promise<{ found: boolean; timedOut: boolean }> {
  const ac = new AbortController()
  const stop = () => ac.abort()
  opts.signal?.addEventListener('abort', stop, { once: true })
  let found = false
  let timedOut = false
  const timer = opts.timeoutSecs > 0 ? setTimeout(() => ((timedOut = true), ac.abort()), opts.timeoutSecs * 1000) : undefined
  try {
    await svc.streamFeedback(
      (record) => {
        opts.onRecord(record)
        if (opts.waitOn !== undefined && record.originalMessageId === opts.waitOn) {
          found = true
          ac.abort()
        }
      },
      ac.signal,
      opts.deviceId,
    )
  } finally {
    clearTimeout(timer)
    opts.signal?.removeEventListener('abort', stop)
  }
  return { found, timedOut }
}
