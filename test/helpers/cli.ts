/**
 * Helpers for tests that run the real `edgemq` binary as a child process (STYLE.md: "CLI tests
 * run the real binary"). They run the compiled CLI in dist/ (`npm test`'s `pretest` builds it),
 * so a test sees exactly what a user's shell sees: argv parsing, stdout/stderr, exit codes.
 *
 *   const home = tempHome()
 *   const r = await runCli(['device', 'create', 'd1'], { home })
 *   assert.equal(r.code, 0, r.stderr)
 *   const device = JSON.parse(r.stdout)
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'

import { BIN, REPO_ROOT } from './paths.js'

export { BIN, REPO_ROOT }

export interface RunCliOptions {
  /** The state directory, passed as $EDGEMQ_HOME (not --home, so `--help` and parse-error runs see the same argv). */
  home?: string
  /** Extra environment; `undefined` values remove a variable. */
  env?: Record<string, string | undefined>
  /** Written to stdin, then stdin is closed. Without it stdin is closed at once (like CI: no TTY, no input). */
  input?: string
  /** Kill the process (SIGKILL) after this long; default 30 s. A killed run gets code -1. */
  timeoutMs?: number
}

export interface CliResult {
  /** Exit code; -1 when the process was killed by a signal (timeout). */
  code: number
  stdout: string
  stderr: string
}

/** Runs `node bin/run.js …args` and collects its output. Never rejects on a non-zero exit. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    // Plain, stable text: no colours in help, no debug stacks unless a test asks for them.
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    EDGEMQ_DEBUG: undefined,
    // The node:test runner marks its children; the CLI is not a test file.
    NODE_TEST_CONTEXT: undefined,
    NODE_OPTIONS: undefined,
    ...(opts.home ? { EDGEMQ_HOME: opts.home } : {}),
    ...opts.env,
  }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolvePromise({ code: code ?? -1, stdout, stderr })
    })
    // EPIPE when the child exits before reading stdin is harmless.
    child.stdin.on('error', () => undefined)
    child.stdin.end(opts.input ?? '')
  })
}

/** Parses stdout (of a result, or as a string) as JSON, with the CLI's stderr in the failure message. */
export function jsonOf<T = unknown>(r: CliResult | string): T {
  const stdout = typeof r === 'string' ? r : r.stdout
  try {
    return JSON.parse(stdout) as T
  } catch {
    throw new Error(typeof r === 'string' ? `stdout is not JSON:\n${r}` : `stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`)
  }
}

/** Runs the CLI in `home`, fails the test on a non-zero exit (stderr in the message), returns stdout. */
export async function cliOk(home: string, args: string[], opts: Omit<RunCliOptions, 'home'> = {}): Promise<string> {
  const r = await runCli(args, { ...opts, home })
  assert.equal(r.code, 0, `edgemq ${args.join(' ')} (exit ${r.code}):\n${r.stderr}`)
  return r.stdout
}

/** `cliOk`, then stdout parsed as JSON. */
export async function cliJson<T>(home: string, args: string[], opts: Omit<RunCliOptions, 'home'> = {}): Promise<T> {
  return jsonOf<T>(await cliOk(home, args, opts))
}

const madeDirs = new Set<string>()

function removeMadeDirs(): void {
  for (const d of madeDirs) rmSync(d, { recursive: true, force: true })
  madeDirs.clear()
}

// Registered once, when a test file first imports this module: node:test's `after` at the top
// level runs when the file's tests are done. Registering it inside tempHome() instead would
// attach it to whichever test or hook is running, and a home made in `before` would vanish after
// that hook. The exit handler covers files that end abruptly.
after(removeMadeDirs)
process.on('exit', removeMadeDirs)

/** A fresh empty directory under the OS temp dir (mode 0700), removed when the test file is done. */
export function tempHome(prefix = 'edgemq-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  madeDirs.add(dir)
  return dir
}
