/**
 * A private `redis-server` per test file: a free port, its own working directory, stopped after.
 * `restart()` stops it gracefully (SIGTERM: Redis writes its AOF) and starts it again on the same
 * port and directory, for the "Redis restarted mid-test" checks. `pause()` (SIGSTOP) keeps every
 * connection open with nobody answering; `crash()` (SIGKILL) drops them as a crash does.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import { freePort } from './ports.js'

export interface RedisOptions {
  /** appendonly yes + appendfsync always: every acknowledged write survives a restart. */
  appendOnly?: boolean
  password?: string
}

export interface RedisProc {
  port: number
  url: string
  dir: string
  stop(): Promise<void>
  restart(): Promise<void>
  /** Stops the server (SIGTERM) but keeps its directory: `up()` brings it back with its data. */
  down(): Promise<void>
  up(): Promise<void>
  /** SIGSTOP: connections stay open, commands are received by the kernel and never answered. */
  pause(): void
  resume(): void
  /** SIGKILL (a stopped server too) and wait for the exit; keeps the directory: `up()` brings it back. */
  crash(): Promise<void>
}

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0
}

async function launch(port: number, dir: string, o: RedisOptions): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--loglevel', 'notice']
  if (o.appendOnly) args.push('--appendonly', 'yes', '--appendfsync', 'always')
  else args.push('--appendonly', 'no')
  if (o.password) args.push('--requirepass', o.password)
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000)
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      out += l + '\n'
      if (/Ready to accept connections/.test(l)) {
        clearTimeout(t)
        resolve()
      }
    })
    proc.once('exit', (code) => {
      clearTimeout(t)
      reject(new Error(`redis-server exited with ${code}:\n${out}`))
    })
  })
  return proc
}

export async function startRedis(o: RedisOptions = {}): Promise<RedisProc> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-redis-'))
  let proc = await launch(port, dir, o)
  const stopProc = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = once(proc, 'exit')
    // A paused server (pause()) would hold the SIGTERM until it is continued.
    proc.kill('SIGCONT')
    proc.kill('SIGTERM')
    await exited
  }
  const auth = o.password ? `:${o.password}@` : ''
  return {
    port,
    dir,
    url: `redis://${auth}127.0.0.1:${port}/0`,
    async stop() {
      await stopProc()
      rmSync(dir, { recursive: true, force: true })
    },
    async restart() {
      await stopProc()
      proc = await launch(port, dir, o)
    },
    down: stopProc,
    async up() {
      proc = await launch(port, dir, o)
    },
    pause() {
      proc.kill('SIGSTOP')
    },
    resume() {
      proc.kill('SIGCONT')
    },
    async crash() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = once(proc, 'exit')
      proc.kill('SIGKILL')
      await exited
    },
  }
}
