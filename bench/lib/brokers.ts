/**
 * Brokers under test, each in its own child process so none shares an event loop with the
 * load generator: edgemq is the real `edgemq broker start` (bin/run.js, the bundled CLI users run:
 * SAS auth → policy → IoT Hub handlers, on-disk home: SQLite registry + LevelDB MQTT persistence)
 * on a home a child prepares first, edgemq-mem (the same broker in-process on an in-memory hub),
 * raw aedes (defaults, no auth, memory persistence), aedes-level (aedes over
 * aedes-persistence-level on LevelDB, for persistent sessions), and mosquitto (Debian package,
 * no auth; mosquitto-persist with `persistence true`) when installed.
 * `node --import tsx bench/lib/brokers.ts --serve <kind> --devices N` is the child mode;
 * `… --prepare <home> --devices N` makes edgemq's home (devices, policy) and exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect as netConnect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'

import type { IClientOptions } from 'mqtt'

import { buildSasToken } from '../../src/sas/index.js'
import { REPO_ROOT as repoRoot, SEED_FIXTURES } from '../../test/helpers/paths.js'
import { freePort } from '../../test/helpers/ports.js'

const here = fileURLToPath(import.meta.url)
export const MOSQUITTO = '/usr/sbin/mosquitto'
/** Every bench device shares this key so the load generator can sign its own tokens. */
export const BENCH_KEY = Buffer.alloc(32, 7).toString('base64')
export const HUB_HOST = 'edgemq.azure-devices.net'

export type BrokerKind = 'edgemq' | 'edgemq-mem' | 'aedes' | 'aedes-level' | 'mosquitto' | 'mosquitto-persist'

/** Brokers that need IoT Hub credentials. */
export const isEdgemq = (k: BrokerKind): boolean => k === 'edgemq' || k === 'edgemq-mem'

export interface RunningBroker {
  kind: BrokerKind
  port: number
  pid: number
  /** Needs IoT Hub credentials (edgemq). */
  auth: boolean
  child: ChildProcess
  cleanup?: () => void
  /** A full garbage collection in a node broker (nothing for mosquitto); resolves with its JS heap in use after it. */
  collectGarbage(): Promise<number | undefined>
}

/** The seed's pub/sub policy plus one statement for the bench's own topics (`bench/…`). */
function benchPolicy(): unknown {
  const seed = readFileSync(path.join(SEED_FIXTURES, 'seed-policy-pubsub.json'), 'utf8')
  return { seed, extra: { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['bench/#'] }] } }
}

/**
 * A module of the compiled broker (`npm run build`, which `npm run bench` runs first): what
 * `edgemq broker start` runs. Through tsx the same source ran differently (esbuild's keepNames
 * wraps every named closure it creates in a defineProperty call, ~1 % of a connect storm's CPU).
 */
export async function fromDist<T>(module: string): Promise<T> {
  const file = path.join(repoRoot, 'dist', module)
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm run bench does)`)
  return (await import(pathToFileURL(file).href)) as T
}

async function serve(kind: BrokerKind, devices: number): Promise<void> {
  // collectGarbage(): the bench asks for a full GC (node runs with --expose-gc) before it reads RSS.
  process.on('SIGUSR2', () => {
    ;(globalThis as { gc?: () => void }).gc?.()
    console.log(JSON.stringify({ gc: true, heapUsed: process.memoryUsage().heapUsed }))
  })
  if (kind === 'aedes' || kind === 'aedes-level') {
    const { Aedes } = await import('aedes')
    let persistence: unknown
    let dir: string | undefined
    if (kind === 'aedes-level') {
      // What an aedes user gets for durable sessions: aedes-persistence-level over classic-level.
      const { ClassicLevel } = await import('classic-level')
      const { default: levelPersistence } = await import('aedes-persistence-level')
      dir = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-level-'))
      persistence = levelPersistence(new ClassicLevel(dir, { valueEncoding: 'buffer' }))
    }
    const aedes = await Aedes.createBroker(persistence ? { persistence: persistence as never } : {})
    const server = createServer((s) => aedes.handle(s))
    server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })))
    process.once('SIGTERM', () => {
      if (dir) rmSync(dir, { recursive: true, force: true })
      process.exit(0)
    })
    return
  }
  // edgemq here only with BENCH_EDGEMQ_LIB=1 (startBroker): the same on-disk broker, in-process from dist/.
  const onDisk = kind === 'edgemq'
  const { startEdgeBroker } = await fromDist<typeof import('../../src/broker/broker.js')>('broker/broker.js')
  const home = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-'))
  const ctx = await prepareHome(home, devices, !onDisk)
  // On disk the broker opens the home itself, as `broker start` does.
  if (onDisk) await ctx.close()
  const broker = await startEdgeBroker({ home, context: onDisk ? undefined : ctx, inMemory: !onDisk, port: 0, tlsPort: null, logLevel: 'warn', writeRuntimeFile: false })
  console.log(JSON.stringify({ port: broker.ports.mqtt }))
  process.once('SIGTERM', () => void broker.close().finally(() => (rmSync(home, { recursive: true, force: true }), process.exit(0))))
}

/** The bench's hub: its devices (all with BENCH_KEY) and the seed policy plus `bench/#`. */
async function prepareHome(home: string, devices: number, inMemory: boolean) {
  const { openHub } = await fromDist<typeof import('../../src/config/home.js')>('config/home.js')
  const { parseEdgeHubDocument } = await fromDist<typeof import('../../src/edgehub/index.js')>('edgehub/index.js')
  const { setEdgeHubDesired } = await fromDist<typeof import('../../src/service/edgehub.js')>('service/edgehub.js')
  const ctx = await openHub({ home, inMemory, createDefault: true })
  for (const d of ['pub_client', 'sub_client', 'psub_client']) await ctx.registry.createDevice({ deviceId: d, primaryKey: BENCH_KEY, secondaryKey: BENCH_KEY })
  for (let i = 0; i < devices; i++) await ctx.registry.createDevice({ deviceId: `dev${i}`, primaryKey: BENCH_KEY, secondaryKey: BENCH_KEY })
  const { seed, extra } = benchPolicy() as { seed: string; extra: unknown }
  const desired = parseEdgeHubDocument(seed) as { mqttBroker: { authorizations: unknown[] } }
  desired.mqttBroker.authorizations.push(extra)
  await setEdgeHubDesired(ctx, desired as never)
  return ctx
}

/** The child's JSON stdout lines: the first with a port is the ready line; `{ gc: true }` acknowledges a GC. */
function watchLines(child: ChildProcess, name: string): { ready: Promise<number>; gcDone: EventEmitter } {
  // 'gc' events carry the heap in use after the collection.
  const gcDone = new EventEmitter()
  const ready = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      let msg: { port?: number; ports?: { mqtt?: number }; gc?: boolean; heapUsed?: number }
      try {
        msg = JSON.parse(l) as typeof msg
      } catch {
        return
      }
      if (msg.gc) gcDone.emit('gc', msg.heapUsed)
      else if (typeof msg.port === 'number') resolve(msg.port)
      else if (typeof msg.ports?.mqtt === 'number') resolve(msg.ports.mqtt) // `broker start -o json`'s ready line
    })
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)))
  })
  return { ready, gcDone }
}

export async function startBroker(kind: BrokerKind, opts: { devices?: number } = {}): Promise<RunningBroker> {
  if (kind === 'mosquitto' || kind === 'mosquitto-persist') {
    const dir = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-mosq-'))
    const port = await freePort()
    const conf = path.join(dir, 'mosquitto.conf')
    // mosquitto-persist: `persistence true` keeps sessions in memory and saves them to disk at
    // shutdown and every autosave_interval; it writes nothing per message.
    const persist = kind === 'mosquitto-persist' ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']
    writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0', 'max_inflight_messages 0', 'max_connections -1', ...persist, 'log_dest none', ''].join('\n'))
    const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] })
    // mosquitto prints nothing when ready at this log level: wait until its port accepts.
    for (;;) {
      const ok = await new Promise<boolean>((r) => {
        const s = netConnect(port, '127.0.0.1', () => (s.destroy(), r(true)))
        s.once('error', () => r(false))
      })
      if (ok) break
      if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode})`)
      await new Promise((r) => setTimeout(r, 20))
    }
    return { kind, port, pid: child.pid as number, auth: false, child, cleanup: () => rmSync(dir, { recursive: true, force: true }), collectGarbage: async () => undefined }
  }
  // BENCH_CPU_PROF=<dir>: profile the node brokers (flame graphs: open the .cpuprofile in DevTools).
  // BENCH_NODE_FLAGS='--perf-basic-prof …': extra node flags for the edgemq brokers only (perf, GC experiments).
  const prof = [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), ...(process.env.BENCH_NODE_FLAGS && isEdgemq(kind) ? process.env.BENCH_NODE_FLAGS.split(' ') : [])]
  let child: ChildProcess
  let cleanup: (() => void) | undefined
  // BENCH_EDGEMQ_LIB=1: edgemq in-process from dist/ instead of through the CLI (to compare the two builds).
  if (kind === 'edgemq' && !process.env.BENCH_EDGEMQ_LIB) {
    const home = mkdtempSync(path.join(tmpdir(), 'edgemq-bench-'))
    cleanup = () => rmSync(home, { recursive: true, force: true })
    const prep = spawn(process.execPath, ['--import', 'tsx', here, '--prepare', home, '--devices', String(opts.devices ?? 0)], { stdio: ['ignore', 'inherit', 'inherit'], cwd: repoRoot })
    const [code] = (await once(prep, 'exit')) as [number | null]
    if (code !== 0) throw new Error(`preparing the edgemq bench home failed (exit ${code})`)
    const cli = [path.join(repoRoot, 'bin', 'run.js'), 'broker', 'start', '--home', home, '--port', '0', '--no-tls', '--log-level', 'warn', '-o', 'json']
    child = spawn(process.execPath, [...prof, '--expose-gc', '--import', pathToFileURL(path.join(path.dirname(here), 'gc-signal.mjs')).href, ...cli], { stdio: ['ignore', 'pipe', 'inherit'], cwd: repoRoot })
  } else {
    child = spawn(process.execPath, [...prof, '--expose-gc', '--import', 'tsx', here, '--serve', kind, '--devices', String(opts.devices ?? 0)], { stdio: ['ignore', 'pipe', 'inherit'], cwd: repoRoot })
  }
  const { ready, gcDone } = watchLines(child, kind)
  const collectGarbage = async () => {
    const done = once(gcDone, 'gc')
    child.kill('SIGUSR2')
    return (await done)[0] as number | undefined
  }
  return { kind, port: await ready, pid: child.pid as number, auth: isEdgemq(kind), child, cleanup, collectGarbage }
}

export async function stopBroker(b: RunningBroker): Promise<void> {
  if (b.child.exitCode === null && b.child.signalCode === null) {
    const exited = new Promise((r) => b.child.once('exit', r))
    b.child.kill('SIGTERM')
    await exited
  }
  b.cleanup?.()
}

export function availableKinds(): BrokerKind[] {
  return ['edgemq', 'edgemq-mem', 'aedes', 'aedes-level', ...(existsSync(MOSQUITTO) ? (['mosquitto', 'mosquitto-persist'] as const) : [])]
}

/** Connect options for `clientId` on `b` (IoT Hub username + SAS for edgemq). */
export function credentials(b: RunningBroker, clientId: string, clean = true): IClientOptions {
  const o: IClientOptions = { host: '127.0.0.1', port: b.port, clientId, protocolVersion: 4, clean, reconnectPeriod: 0 }
  if (b.auth) {
    o.username = `${HUB_HOST}/${clientId}/?api-version=2021-04-12`
    o.password = buildSasToken({ resource: `${HUB_HOST}/devices/${clientId}`, key: BENCH_KEY, durationSecs: 3600 })
  }
  return o
}

/**
 * CPU time a process has used so far, all its threads (GC helpers, libuv pool, LevelDB) included,
 * in microseconds: the sum of /proc/<pid>/task/<tid>/schedstat (nanoseconds on the CPU).
 * Threads that ended are not counted, so read it around work the broker's own threads do.
 */
export function cpuMicrosOf(pid: number): number {
  let ns = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      /* the thread ended between the listing and the read */
    }
  }
  return ns / 1000
}

/** Resident set size of a process, from /proc (bytes). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return m ? Number(m[1]) * 1024 : 0
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length === 0 ? 0 : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

// Child mode only when this file is the entry point (other bench scripts import it and have their own --serve).
const serveAt = process.argv.indexOf('--serve')
const prepareAt = process.argv.indexOf('--prepare')
if ((serveAt >= 0 || prepareAt >= 0) && process.argv[1] && path.resolve(process.argv[1]) === here) {
  const devAt = process.argv.indexOf('--devices')
  const devices = devAt >= 0 ? Number(process.argv[devAt + 1]) : 0
  if (serveAt >= 0) await serve(process.argv[serveAt + 1] as BrokerKind, devices)
  else await (await prepareHome(process.argv[prepareAt + 1], devices, false)).close()
}
