#!/usr/bin/env node
// Runs test files with node:test's run() API (compiled, see below) and prints, at the end, the failing
// tests by name, each file's wall time, and one plain line CI reads:
//   tests: N passed, N failed[, N skipped]
//
//   node scripts/run-tests.mjs               → test/**/*.test.ts
//   node scripts/run-tests.mjs sas policy    → only files whose path contains "sas" or "policy"
//   node scripts/run-tests.mjs --dir test/unit [filters…]   → only files under test/unit
//
// Test files run compiled: scripts/build-tests.mjs strips the types of src/, test/, bench/ and
// scripts/ into .build/run-<pid>/ first (half a second), so no test process pays for tsx's loader thread.
// Node 20's run() has no execArgv option: a test file's process gets this process's execArgv. So
// the runner re-executes itself once with --enable-source-maps (stack traces and test locations
// point at the .ts sources) and --test-timeout (which applies to each test inside a file).
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { run } from 'node:test'
import { inspect } from 'node:util'
import { spec } from 'node:test/reporters'

import { buildTests, compiledPath, removeBuild } from './build-tests.mjs'
import { tsFiles } from './ts-files.mjs'

const TEST_TIMEOUT_MS = 120_000
const CHILD_ARGV = ['--enable-source-maps', `--test-timeout=${TEST_TIMEOUT_MS}`]

if (!process.execArgv.includes('--enable-source-maps')) {
  const r = spawnSync(process.execPath, [...CHILD_ARGV, ...process.argv.slice(1)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

const args = process.argv.slice(2)
// --checks: also run the typecheck and the linter, as two more jobs of the pool (they are
// single-threaded, so beside the tests they cost little wall time); a failure fails the run.
const checksAt = args.indexOf('--checks')
const withChecks = checksAt >= 0
if (withChecks) args.splice(checksAt, 1)
let root = 'test'
const dirAt = args.indexOf('--dir')
if (dirAt >= 0) root = args.splice(dirAt, 2)[1]
const filters = args
const files = tsFiles(root)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}

// One pool of test-file processes, so no class of file waits for another to finish:
// - sdk-*.test.ts: the official Azure SDKs dial fixed ports (8883, 443, 5671), so at most one runs
//   at a time — but alongside everything else;
// - end-to-end files (CLI and broker child processes): at most three at once (EDGEMQ_TEST_E2E). They
//   wait on child processes more than they compute (an e2e file used 40 % of a core on average), so
//   two left the 2-core machine half idle;
// - unit files (in-process, mostly waiting on sockets) fill the remaining slots.
// Files start longest first (times of the last run, kept in node_modules/.cache; on a clean clone,
// test/file-times.json, a full run's times checked in; a file in neither: end-to-end and SDK files
// before unit ones), so the run does not end on one long file.
const SLOTS = Number(process.env.EDGEMQ_TEST_CONCURRENCY ?? 5)
const isSdk = (f) => /(^|[\\/])sdk-[^\\/]*\.test\.ts$/.test(f)
const isUnit = (f) => /(^|[\\/])unit[\\/]/.test(f)
const classOf = (f) => (isSdk(f) ? 'sdk' : isUnit(f) ? 'unit' : 'e2e')
const LIMITS = { sdk: 1, e2e: Number(process.env.EDGEMQ_TEST_E2E ?? 3), unit: SLOTS }

const TIMES_FILE = join('node_modules', '.cache', 'edgemq-test-times.json')
let lastTimes = {}
for (const file of [TIMES_FILE, join('test', 'file-times.json')]) {
  try {
    lastTimes = JSON.parse(readFileSync(file, 'utf8'))
    break
  } catch {
    // not there: the next one, or the class order below decides
  }
}
const guess = (f) => lastTimes[f] ?? { sdk: 60_000, e2e: 30_000, unit: 1_000 }[classOf(f)]
const queue = [...files].sort((a, b) => guess(b) - guess(a))

const totals = { pass: 0, fail: 0, skipped: 0 }
/** { file, name, error } for every failed test (not the suites/files that only failed because of it). */
const failures = []
/** file → wall time (ms) of its process. */
const fileTimes = new Map()

const firstLine = (err) => {
  const cause = err?.cause ?? err
  // An object without a prototype (some assertion values) has no toString: inspect it instead.
  let text
  try {
    text = String(cause?.message ?? cause ?? 'failed')
  } catch {
    text = inspect(cause?.message ?? cause)
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  // node:assert's generated messages end their first line with ':' ("Expected values to be strictly equal:").
  return lines[0]?.endsWith(':') && lines[1] ? `${lines[0]} ${lines[1].trim()}` : (lines[0] ?? text)
}

const CHECKS = [
  { name: 'typecheck (tsc -p tsconfig.test.json)', cmd: ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.test.json'] },
  { name: 'lint (eslint src test bench scripts)', cmd: ['node_modules/eslint/bin/eslint.js', 'src', 'test', 'bench', 'scripts'] },
]

/** Runs one check to the end; its output is printed whole, and a failure is listed like a failed test. */
function runCheck(check) {
  return new Promise((resolve) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, check.cmd, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('close', (code) => {
      fileTimes.set(check.name, Date.now() - t0)
      process.stdout.write(`${code === 0 ? '✔' : '✖'} ${check.name}\n${out}`)
      if (code !== 0) failures.push({ file: check.name, name: '(check)', error: out.trim().split('\n').slice(0, 3).join(' | ') || `exit ${code}` })
      resolve()
    })
  })
}

/** Runs one file in its own process; its report is printed whole when it ends, so files never interleave. */
function runFile(file) {
  return new Promise((resolve) => {
    const compiled = compiledPath(file)
    const stream = run({ files: [compiled] })
    const isFile = (d) => d.nesting === 0 && d.name === compiled
    let stderr = ''
    const out = []
    stream.on('test:stderr', (d) => {
      stderr += d.message
    })
    stream.on('test:complete', (d) => {
      if (isFile(d)) fileTimes.set(file, d.details.duration_ms)
    })
    stream.on('test:fail', (d) => {
      const err = d.details.error
      // A suite or file whose only failure is a failed subtest is not listed again.
      if (err?.failureType === 'subtestsFailed') return
      if (isFile(d)) {
        // The file's process failed outside any test (a crash at import, a hang): its stderr says why.
        const lines = stderr.split('\n').filter((l) => l.trim() !== '')
        const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.at(-1) ?? firstLine(err)
        failures.push({ file, name: '(file)', error: why })
      } else failures.push({ file: relative(process.cwd(), d.file ?? '?'), name: d.name, error: firstLine(err) })
    })
    stream.on('test:diagnostic', (d) => {
      if (d.nesting !== 0) return
      const m = /^(pass|fail|cancelled|skipped) (\d+)$/.exec(d.message)
      // A cancelled test (timed out, or cut short by its file ending) counts as failed.
      if (m) totals[m[1] === 'cancelled' ? 'fail' : m[1]] += Number(m[2])
    })
    const report = stream.compose(spec)
    report.on('data', (chunk) => out.push(chunk))
    report.on('end', () => {
      process.stdout.write(out.join(''))
      resolve()
    })
  })
}

const started = Date.now()
await buildTests()
const checksDone = withChecks ? Promise.all(CHECKS.map(runCheck)) : Promise.resolve()
await new Promise((done) => {
  const running = { sdk: 0, e2e: 0, unit: 0 }
  let active = 0
  const next = () => {
    if (queue.length === 0 && active === 0) return done()
    while (active < SLOTS) {
      const i = queue.findIndex((f) => running[classOf(f)] < LIMITS[classOf(f)])
      if (i < 0) break
      const [file] = queue.splice(i, 1)
      const c = classOf(file)
      running[c]++
      active++
      runFile(file).then(() => {
        running[c]--
        active--
        next()
      })
    }
  }
  next()
})
await checksDone
removeBuild()

try {
  mkdirSync(dirname(TIMES_FILE), { recursive: true })
  writeFileSync(TIMES_FILE, JSON.stringify({ ...lastTimes, ...Object.fromEntries(fileTimes) }))
} catch {
  // no cache directory (read-only checkout): the next run orders by class
}

const secs = (ms) => `${(ms / 1000).toFixed(1)} s`
console.log('\nfile wall times:')
for (const [f, ms] of [...fileTimes].sort((a, b) => b[1] - a[1])) console.log(`  ${secs(ms).padStart(8)}  ${f}`)
console.log(`  ${secs(Date.now() - started).padStart(8)}  total`)
if (failures.length > 0) {
  console.log('\nfailed:')
  for (const f of failures) console.log(`  ${f.file} › ${f.name}\n      ${f.error}`)
}
console.log(`tests: ${totals.pass} passed, ${totals.fail} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`)
process.exit(totals.fail > 0 || failures.length > 0 ? 1 : 0)
