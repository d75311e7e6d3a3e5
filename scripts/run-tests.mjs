#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx. Node 20's --test has no glob
// support, so we find the files here. Extra args are passed on as file filters:
//   node scripts/run-tests.mjs sas policy   → only files whose path contains "sas" or "policy"
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

function find(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...find(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const filters = process.argv.slice(2)
const files = find('test').filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort()
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}

// The official Azure IoT SDKs always dial port 8883, so every test/sdk-*.test.ts starts its broker
// there: those files run one after another, after the others (which run two at a time).
const isSdk = (f) => /(^|[\\/])sdk-[^\\/]*\.test\.ts$/.test(f)
const groups = [
  { files: files.filter((f) => !isSdk(f)), concurrency: 2 },
  { files: files.filter(isSdk), concurrency: 1 },
].filter((g) => g.files.length > 0)

// Each group prints its own TAP summary; the totals of all groups are added up and printed
// last as one plain "tests: N passed, N failed" line.
const totals = { pass: 0, fail: 0, skipped: 0 }

function run(group) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${group.concurrency}`, '--test-timeout=120000', ...group.files], {
      stdio: ['inherit', 'pipe', 'inherit'],
    })
    let tail = ''
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      const text = tail + chunk.toString('utf8')
      const lines = text.split('\n')
      tail = lines.pop() ?? ''
      for (const line of lines) {
        const m = /^# (pass|fail|skipped) (\d+)$/.exec(line)
        if (m) totals[m[1]] += Number(m[2])
      }
    })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

let failed = 0
for (const g of groups) failed = (await run(g)) || failed
console.log(`tests: ${totals.pass} passed, ${totals.fail} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`)
process.exit(failed || (totals.fail > 0 ? 1 : 0))
