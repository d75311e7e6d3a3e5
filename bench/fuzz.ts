// `npm run fuzz -- [--cases N] [--seed S] [--workers W] [--batch B]`: the wire fuzzer (bench/lib/fuzz.ts)
// against a broker in a child process (so a crash is seen as one: the child exits). After each
// batch of B cases the broker must still be serving on all three ports. Prints cases/s, the
// broker's RSS, crashes and failed health checks; exits 1 on any.
//   default: 1,000,000 cases, seed 1, 16 workers, batches of 50,000
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { startHub } from '../src/emulator/index.js'
import { fuzz, fuzzTargetOf, serving, type FuzzStats, type FuzzTarget } from './lib/fuzz.js'

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number`)
  return v
}

/** Child mode: an in-memory hub on free ports, one device, allow-all; prints the target, then RSS lines. */
async function serve(): Promise<void> {
  const hub = await startHub({ policy: 'allow-all', logLevel: 'silent' })
  const target = await fuzzTargetOf(hub, 24 * 3600)
  process.stdout.write(JSON.stringify({ target }) + '\n')
  process.stdin.on('data', () => process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss }) + '\n'))
  process.stdin.on('end', () => void hub.close().then(() => process.exit(0)))
}

async function main(): Promise<void> {
  const total = arg('cases', 1_000_000)
  const seed = arg('seed', 1)
  const workers = arg('workers', 16)
  const batch = arg('batch', 50_000)
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] })
  let exited: string | undefined
  child.on('exit', (code, signal) => (exited = `broker exited (code ${code}, signal ${signal})`))
  const lines = createInterface({ input: child.stdout! })
  const next = () => new Promise<Record<string, unknown>>((resolve, reject) => {
    lines.once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>))
    child.once('exit', () => reject(new Error(exited)))
  })
  const { target } = (await next()) as { target: FuzzTarget }
  const rss = async () => {
    child.stdin!.write('\n')
    return Math.round(((await next()).rss as number) / 1024 / 1024)
  }
  console.log(`fuzz: seed ${seed}, ${total} cases, ${workers} workers, batches of ${batch}; broker pid ${child.pid}, rss ${await rss()} MiB`)
  const stats: FuzzStats = { cases: 0, connections: 0, byPort: { mqtt: 0, mqtts: 0, rest: 0 }, hung: 0 }
  const failures: string[] = []
  const start = Date.now()
  let batchNo = 0
  while (stats.cases < total && !exited) {
    batchNo++
    const t0 = Date.now()
    const before = stats.cases
    await fuzz(target, { seed: seed * 100_000 + batchNo, cases: Math.min(batch, total - stats.cases), workers, stats })
    const health = exited ? [exited] : await serving(target)
    if (health.length) failures.push(`batch ${batchNo}: ${health.join('; ')}`)
    const rate = Math.round(((stats.cases - before) * 1000) / (Date.now() - t0))
    console.log(`batch ${batchNo}: ${stats.cases} cases, ${stats.connections} connections, ${rate} cases/s, broker rss ${exited ? '-' : await rss()} MiB, serving: ${health.length ? health.join('; ') : 'yes'}`)
  }
  const secs = (Date.now() - start) / 1000
  const crashes = exited ? 1 : 0
  console.log(`done: ${stats.cases} cases (mqtt ${stats.byPort.mqtt}, mqtts ${stats.byPort.mqtts}, rest ${stats.byPort.rest}) over ${stats.connections} connections in ${secs.toFixed(0)} s = ${Math.round(stats.cases / secs)} cases/s; crashes ${crashes}; failed health checks ${failures.length}; connections not closed by the broker within 2 s ${stats.hung}`)
  for (const f of failures) console.log(`  ${f}`)
  child.stdin!.end()
  process.exitCode = crashes || failures.length ? 1 : 0
}

if (process.argv.includes('--serve')) void serve()
else
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
