/**
 * A real `edgemq broker start` child process on free ports, for tests. Resolves when the
 * broker prints its JSON "ready" line (an event, not a sleep).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { after } from 'node:test'

import { LineLog, type WaitForLogOptions } from './log.js'
import { BIN } from './paths.js'

export interface BrokerProc {
  proc: ChildProcess
  pid: number
  ports: { mqtt: number; mqtts: number; control: number }
  caFile: string
  /** Everything the broker logged so far (stderr, JSON lines). */
  logs(): string
  /** The current end of the log, for `waitForLog(re, { since })`. */
  mark(): number
  /**
   * Resolves with the first log line matching `re` logged at or after `since` (a `mark()`;
   * default: since the start); rejects on timeout (default 10 s) or when the broker exits first.
   */
  waitForLog(re: RegExp, opts?: WaitForLogOptions): Promise<string>
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>
}

/** Broker children still running in this test file. */
const live = new Set<ChildProcess>()

// A test that fails between a start and its stop must not leave the broker running: the child's
// pipes would keep this file's process, and with it the whole run, alive. Runs after every
// describe block's own after() hooks.
after(async () => {
  await Promise.all(
    [...live].map(async (p) => {
      const exited = once(p, 'exit')
      p.kill('SIGKILL')
      await exited
    }),
  )
})

export async function startBroker(home: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<BrokerProc> {
  const defaults = [...(extraArgs.includes('--port') ? [] : ['--port', '0']), ...(extraArgs.includes('--tls-port') ? [] : ['--tls-port', '0'])]
  const proc = spawn(process.execPath, [BIN, 'broker', 'start', '--home', home, ...defaults, '-o', 'json', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined, ...env },
  })
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  const log = new LineLog('broker log').follow(proc.stderr!)
  proc.once('close', (code, signal) => log.end(`broker exited (${signal ?? code})`))
  const ready = await new Promise<{ ports: BrokerProc['ports']; caFile: string; pid: number }>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! })
    rl.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { event?: string }
        if (msg.event === 'ready') resolve(msg as unknown as { ports: BrokerProc['ports']; caFile: string; pid: number })
      } catch {
        /* banner text */
      }
    })
    proc.once('exit', (code) => reject(new Error(`broker exited with ${code} before ready:\n${log.text()}`)))
  })
  const exited = once(proc, 'exit')
  return {
    proc,
    pid: ready.pid,
    ports: ready.ports,
    caFile: ready.caFile,
    logs: () => log.text(),
    mark: () => log.mark(),
    waitForLog: (re, opts) => log.waitFor(re, opts),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      await exited
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGKILL')
      await exited
    },
  }
}
