/**
 * Broker logs (pino, the field's choice): pretty on a terminal, JSON lines otherwise.
 * Secrets never reach a log line: tokens are never passed to the logger, and the
 * `redact` paths below catch any that slip into objects.
 */
import { createRequire } from 'node:module'

import { pino, type Logger } from 'pino'
import type PinoPretty from 'pino-pretty'

// pino-pretty only when a terminal reads the log: scripts and tests (JSON lines) skip its ~45 ms load.
const require = createRequire(import.meta.url)

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent'

export function createLogger(opts: { level?: LogLevel; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const base = {
    level: opts.level ?? 'info',
    base: undefined,
    redact: { paths: ['password', '*.password', 'sas', '*.sas', 'key', '*.key', 'token', '*.token'], censor: '…redacted' },
  }
  const usePretty = opts.pretty ?? Boolean(process.stderr.isTTY)
  if (usePretty) {
    const pretty = require('pino-pretty') as typeof PinoPretty
    return pino(base, pretty({ sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination: 2 }))
  }
  return pino(base, opts.destination ?? pino.destination({ fd: 2, sync: false }))
}
