/**
 * A whole hub in this process (`startHub()`), for broker tests that need no process boundary: the
 * same `ports` / `logs()` / `mark()` / `waitForLog()` as a `startBroker()` child, with the broker's
 * own JSON log lines (createLogger, so redaction and field order are the CLI's), and the Hub API
 * for setup instead of CLI runs.
 *
 *   const broker = await startTestHub({ clockSkewSecs: 0 })
 *   await broker.hub.createDevice('d1')
 *   await broker.waitForLog(/client connected/, { since: broker.mark() })
 */
import { Writable } from 'node:stream'

import { createLogger } from '../../src/broker/logger.js'
import { startHub, type Hub, type StartHubOptions } from '../../src/emulator/index.js'
import { LineLog, type WaitForLogOptions } from './log.js'

export interface TestHub {
  hub: Hub
  ports: { mqtt: number; mqtts: number; control: number; rest?: number }
  /** The hub CA file (an on-disk hub; '' in memory). */
  caFile: string
  /** The broker is still serving (in place of a child's exit code: nothing restarted it). */
  running(): boolean
  /** Everything the broker logged so far (JSON lines). */
  logs(): string
  /** The current end of the log, for `waitForLog(re, { since })`. */
  mark(): number
  /** The first log line matching `re` logged at or after `since` (default: since the start); rejects on timeout (10 s) or after stop(). */
  waitForLog(re: RegExp, opts?: WaitForLogOptions): Promise<string>
  stop(): Promise<void>
}

export async function startTestHub(opts: Omit<StartHubOptions, 'logger' | 'logLevel'> & { logLevel?: 'info' | 'debug' } = {}): Promise<TestHub> {
  const log = new LineLog('hub log')
  let partial = ''
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const parts = (partial + chunk.toString('utf8')).split('\n')
      partial = parts.pop() ?? ''
      for (const line of parts) if (line) log.push(line)
      cb()
    },
  })
  const logger = createLogger({ level: opts.logLevel ?? 'info', pretty: false, destination })
  const hub = await startHub({ ...opts, logger })
  const ports = hub.ports
  return {
    hub,
    ports: { mqtt: ports.mqtt ?? 0, mqtts: ports.mqtts ?? 0, control: ports.control, rest: ports.rest },
    caFile: hub.caFile ?? '',
    running: () => !hub.broker.aedes.closed,
    logs: () => log.text(),
    mark: () => log.mark(),
    waitForLog: (re, o) => log.waitFor(re, o),
    async stop() {
      await hub.close()
      log.end('hub closed')
    },
  }
}
