/**
 * A real `edgemq broker start` child process on free ports, for tests. Resolves when the
 * broker prints its JSON "ready" line (an event, not a sleep).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface BrokerProc {
  proc: ChildProcess
  pid: number
  ports: { mqtt: number; mqtts: number; control: number }
  caFile: string
  /** Everything the broker logged so far (stderr, JSON lines). */
  logs(): string
  /** Resolves with the first log line matching `re` (already logged or future). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>
}

export async function startBroker(home: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<BrokerProc> {
  const defaults = [...(extraArgs.includes('--port') ? [] : ['--port', '0']), ...(extraArgs.includes('--tls-port') ? [] : ['--tls-port', '0'])]
  const proc = spawn(process.execPath, [BIN, 'broker', 'start', '--home', home, ...defaults, '-o', 'json', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined, ...env },
  })
  let logs = ''
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = []
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    logs += line + '\n'
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  })
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
    proc.once('exit', (code) => reject(new Error(`broker exited with ${code} before ready:\n${logs}`)))
  })
  const exited = once(proc, 'exit')
  return {
    proc,
    pid: ready.pid,
    ports: ready.ports,
    caFile: ready.caFile,
    logs: () => logs,
    waitForLog(re, timeoutMs = 10_000) {
      const hit = logs.split('\n').find((l) => re.test(l))
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no log line matched ${re} within ${timeoutMs} ms:\n${logs}`)), timeoutMs)
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) })
      })
    },
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
