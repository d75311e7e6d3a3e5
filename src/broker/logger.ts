/**
 * Broker logs (pino, the field's choice): pretty on a terminal, JSON lines otherwise.
 * Secrets never reach a log line: tokens are never passed to the logger, and the
 * `redact` paths below catch any that slip into objects.
 */
import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent'

export function createLogger(opts: { level?: LogLevel; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const base = {
    level: opts.level ?? 'info',
    base: undefined,
    redact: { paths: ['password', '*.password', 'sas', '*.sas', 'key', '*.key', 'token', '*.token'], censor: '…redacted' },
  }
  const usePretty = opts.pretty ?? Boolean(process.stderr.isTTY)
  if (usePretty) {
    return pino(base, pretty({ sync: true, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination: 2 }))
  }
  return pino(base, opts.destination ?? pino.destination({ fd: 2, sync: false }))
}
