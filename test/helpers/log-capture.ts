/**
 * A pino logger that keeps what an in-process broker logs, so a test can wait for a line (on the
 * event, never a sleep) that is logged after a given point: `since` excludes earlier lines.
 *
 *   const log = captureLog()
 *   const hub = await startHub({ logger: log.logger })
 *   const mark = log.mark()
 *   … await log.waitFor(/will refused/, { since: mark })
 */
import { EventEmitter } from 'node:events'
import { Writable } from 'node:stream'

import { pino, type Logger } from 'pino'

export interface LogLine {
  msg: string
  [k: string]: unknown
}

export interface LogCapture {
  logger: Logger
  lines: LogLine[]
  /** The position after the lines logged so far. */
  mark(): number
  /** The first line matching `re` (on msg and the whole JSON) logged at or after `since`; rejects after `timeoutMs`. */
  waitFor(re: RegExp, opts?: { since?: number; timeoutMs?: number }): Promise<LogLine>
}

export function captureLog(level = 'info'): LogCapture {
  const lines: LogLine[] = []
  const texts: string[] = []
  const ev = new EventEmitter()
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text) continue
        lines.push(JSON.parse(text) as LogLine)
        texts.push(text)
        ev.emit('line')
      }
      cb()
    },
  })
  const logger = pino({ level }, stream)
  const find = (re: RegExp, from: number) => {
    for (let i = from; i < lines.length; i++) if (re.test(texts[i])) return lines[i]
    return undefined
  }
  return {
    logger,
    lines,
    mark: () => lines.length,
    waitFor(re, opts = {}) {
      const since = opts.since ?? 0
      const hit = find(re, since)
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const onLine = () => {
          const h = find(re, since)
          if (!h) return
          clearTimeout(timer)
          ev.off('line', onLine)
          resolve(h)
        }
        const timer = setTimeout(() => {
          ev.off('line', onLine)
          reject(new Error(`no log line matching ${re} within ${opts.timeoutMs ?? 10_000} ms (${lines.length - since} lines since the mark)`))
        }, opts.timeoutMs ?? 10_000)
        ev.on('line', onLine)
      })
    },
  }
}
