// `npm run bench`: runs every bench script in bench/ (this file excepted), one after another, each
// in its own node process so none warms the JIT or the heap for the next. Filters as arguments:
//   node --import tsx bench/run.ts broker     → only scripts whose name contains "broker"
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = path.dirname(fileURLToPath(import.meta.url))
// Flags (`--json`, `--rounds 5`) go to every script; bare words filter scripts by name.
const argv = process.argv.slice(2)
const flags: string[] = []
const filters: string[] = []
for (let i = 0; i < argv.length; i++) {
  if (argv[i].startsWith('--')) {
    flags.push(argv[i])
    if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') && /^\d+$/.test(argv[i + 1])) flags.push(argv[++i])
  } else filters.push(argv[i])
}
// Machines (`npm run bench -- --json`) get the suite's JSON alone, with no banners around it.
const json = flags.includes('--json')
if (json && filters.length === 0) filters.push('suite')
const scripts = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()

let failed = 0
for (const s of scripts) {
  if (!json) console.log(`\n=== bench/${s} ===`)
  const t0 = Date.now()
  const code = await new Promise<number>((resolve) => {
    spawn(process.execPath, ['--import', 'tsx', path.join(dir, s), ...flags], { stdio: 'inherit' }).once('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)))
  })
  if (!json) console.log(`=== bench/${s}: ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s ===`)
  if (code !== 0) failed++
}
process.exit(failed ? 1 : 0)
