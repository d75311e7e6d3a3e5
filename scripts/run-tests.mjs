#!/usr/bin/env node
// Runs test files with node:test's run() API through tsx and prints, at the end, the failing
// tests by name, each file's wall time, and one plain line CI reads:
//   tests: N passed, N failed[, N skipped]
//
//   node scripts/run-tests.mjs               → test/**/*.test.ts
//   node scripts/run-tests.mjs sas policy    → only files whose path contains "sas" or "policy"
//   node scripts/run-tests.mjs --dir test/unit [filters…]   → only files under test/unit
//
// Node 20's run() has no execArgv/import option: a test file's process gets this process's
// execArgv. So the runner re-executes itself under `--import tsx` once, and every test file
// inherits it (with --test-timeout, which applies to each test inside a file).
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { run } from 'node:test'
import { spec } from 'node:test/reporters'

const TEST_TIMEOUT_MS = 120_000
const CHILD_ARGV = ['--import', 'tsx', `--test-timeout=${TEST_TIMEOUT_MS}`]

if (!process.execArgv.includes('tsx')) {
  const r = spawnSync(process.execPath, [...CHILD_ARGV, ...process.argv.slice(1)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

function find(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...find(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const args = process.argv.slice(2)
let root = 'test'
const dirAt = args.indexOf('--dir')
if (dirAt >= 0) root = args.splice(dirAt, 2)[1]
const filters = args
const files = find(root)
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}

// The official Azure IoT SDKs always dial port 8883, so every sdk-*.test.ts starts its broker
// there: those files run one after another, after the others. Unit files (in-process, mostly
// waiting on sockets) run four at a time; end-to-end files (CLI and broker child processes, which
// are CPU-bound at start-up) two at a time, so a loaded 2-core machine does not time them out.
const isSdk = (f) => /(^|[\\/])sdk-[^\\/]*\.test\.ts$/.test(f)
const isUnit = (f) => /(^|[\\/])unit[\\/]/.test(f)
const groups = [
  { files: files.filter(isUnit), concurrency: 4 },
  { files: files.filter((f) => !isUnit(f) && !isSdk(f)), concurrency: 2 },
  { files: files.filter(isSdk), concurrency: 1 },
].filter((g) => g.files.length > 0)

const totals = { pass: 0, fail: 0, skipped: 0 }
/** { file, name, error } for every failed test (not the suites/files that only failed because of it). */
const failures = []
/** file → wall time (ms) of its process. */
const fileTimes = new Map()

const firstLine = (err) => {
  const cause = err?.cause ?? err
  const text = String(cause?.message ?? cause ?? 'failed')
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  // node:assert's generated messages end their first line with ':' ("Expected values to be strictly equal:").
  return lines[0]?.endsWith(':') && lines[1] ? `${lines[0]} ${lines[1].trim()}` : (lines[0] ?? text)
}

function runGroup(group) {
  return new Promise((resolve) => {
    const stream = run({ files: group.files, concurrency: group.concurrency })
    const isFile = (d) => d.nesting === 0 && group.files.includes(d.name)
    const stderr = new Map()
    stream.on('test:stderr', (d) => {
      if (d.file) stderr.set(d.file, (stderr.get(d.file) ?? '') + d.message)
    })
    stream.on('test:complete', (d) => {
      if (isFile(d)) fileTimes.set(d.name, d.details.duration_ms)
    })
    stream.on('test:fail', (d) => {
      const err = d.details.error
      // A suite or file whose only failure is a failed subtest is not listed again.
      if (err?.failureType === 'subtestsFailed') return
      if (isFile(d)) {
        // The file's process failed outside any test (a crash at import, a hang): its stderr says why.
        const lines = (stderr.get(d.name) ?? '').split('\n').filter((l) => l.trim() !== '')
        const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.at(-1) ?? firstLine(err)
        failures.push({ file: d.name, name: '(file)', error: why })
      } else failures.push({ file: relative(process.cwd(), d.file ?? '?'), name: d.name, error: firstLine(err) })
    })
    stream.on('test:diagnostic', (d) => {
      if (d.nesting !== 0) return
      const m = /^(pass|fail|cancelled|skipped) (\d+)$/.exec(d.message)
      // A cancelled test (timed out, or cut short by its file ending) counts as failed.
      if (m) totals[m[1] === 'cancelled' ? 'fail' : m[1]] += Number(m[2])
    })
    stream.compose(spec).pipe(process.stdout, { end: false })
    stream.on('end', resolve)
  })
}

const started = Date.now()
for (const g of groups) await runGroup(g)

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
