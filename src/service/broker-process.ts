/**
 * Running the broker as a process: foreground (signals, banner) and `--daemon` (a detached
 * child that reports readiness over IPC, so the parent returns the moment it listens —
 * no polling, no sleeps).
 */
import { spawn } from 'node:child_process'
import { openSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { attachClusterStore, ensureHomeDir, homePaths, openHub, readStorePointer } from '../config/home.js'
import { EdgeMqError, InvalidDocumentError } from '../errors.js'
import { importHub } from '../registry/export.js'
import { readDocument } from './edgehub.js'
import { startEdgeBroker, type EdgeBroker, type EdgeBrokerOptions } from '../broker/broker.js'
import { readRuntime, type BrokerRuntime } from '../broker/runtime.js'
import { findUp } from '../util/fs.js'

export interface BrokerProcessOptions extends EdgeBrokerOptions {
  /** Print one JSON "ready" line instead of the human banner. */
  json?: boolean
  /** Seed the registry from a `hub export` file (or an az device list) before listening. */
  importFile?: string
}

function refuseIfRunning(home: string, opts: BrokerProcessOptions): void {
  // Cluster nodes may share a home: each is one more node of the hub, not a second broker.
  if (opts.cluster || (!opts.inMemory && readStorePointer(home))) return
  const rt = readRuntime(homePaths(home).brokerState)
  if (rt) {
    throw new EdgeMqError(`a broker (pid ${rt.pid}) already runs for ${home} on ports ${JSON.stringify(rt.ports)}`, {
      hint: 'stop it with `edgemq broker stop`, or use another --home',
    })
  }
}

export function banner(broker: EdgeBroker): string[] {
  const { hub } = broker.ctx
  const lines = [`edgemq broker for hub "${hub.name}" (${hub.hostName}), home ${broker.ctx.home}`]
  if (broker.ports.mqtt !== undefined) lines.push(`  mqtt   ${broker.host}:${broker.ports.mqtt}`)
  if (broker.ports.rest !== undefined) lines.push(`  rest   https://${broker.host}:${broker.ports.rest}   (IoT Hub service REST for azure-iothub; MQTT over wss at /$iothub/websocket)`)
  if (hub.dps && broker.ports.mqtts !== undefined) lines.push(`  dps    id scope ${hub.dps.idScope} on the mqtts port; devices are assigned to ${hub.dps.assignedHub}`)
  if (broker.ports.ws !== undefined) lines.push(`  ws     ws://${broker.host}:${broker.ports.ws}/$iothub/websocket   (MQTT over WebSockets)`)
  if (broker.ports.amqps !== undefined) lines.push(`  amqps  amqps://${broker.host}:${broker.ports.amqps}   (IoT Hub service AMQP: azure-iothub Client, C2D and feedback)`)
  if (broker.ports.amqp !== undefined) lines.push(`  amqp   amqp://${broker.host}:${broker.ports.amqp}   (plain AMQP)`)
  if (broker.ports.mqtts !== undefined) lines.push(`  mqtts  ${broker.host}:${broker.ports.mqtts}   CA: ${broker.pki?.caCertPath || (broker.pki ? '(in memory: the -o json ready line has caPem)' : '(none)')}`)
  const n = broker.edgeHub.config.mqttBroker.authorizations?.length
  if (n === undefined) {
    lines.push(
      '  policy: none set, so NO client may connect yet (IoT Edge needs an explicit mqtt:connect allow).',
      '          allow every registered identity:  edgemq edgehub set --default-policy',
      '          or set the seed\'s pub/sub policy: edgemq edgehub set <policy.json>',
    )
  } else {
    lines.push(`  policy: ${n} statement(s) from the $edgeHub twin (desired $version ${broker.edgeHub.desiredVersion})`)
  }
  const port = broker.ports.mqtt ?? broker.ports.mqtts
  lines.push(
    'next:',
    `  edgemq device create sub_client --pd ${hub.edgeDeviceId}`,
    `  mosquitto_sub -t test_topic -i sub_client -u "${hub.hostName}/sub_client/?api-version=2018-06-30" -P "$(edgemq sas --device sub_client --raw)" -h localhost -V mqttv311 -p ${port}`,
  )
  return lines
}

/** Foreground: runs until SIGINT/SIGTERM, then drains and flushes persistence. */
export async function runBrokerForeground(opts: BrokerProcessOptions, print: (line: string) => void): Promise<void> {
  refuseIfRunning(opts.home, opts)
  // In memory, the only file is <home>/broker.json (pid and ports, so `broker status/stop` work).
  if (opts.inMemory && (opts.writeRuntimeFile ?? true)) ensureHomeDir(opts.home)
  let context = opts.context
  if (opts.importFile) {
    context ??= await openHub({ home: opts.home, inMemory: opts.inMemory, createDefault: true })
    await importHub(context, parseImportFile(opts.importFile))
  }
  // No spinner here: the broker logs to the same terminal while it starts, and a start takes
  // well under a second (the first one makes the hub's CA); the banner follows at once.
  const broker = await startEdgeBroker({ ...opts, context, writeRuntimeFile: opts.writeRuntimeFile ?? true })
  // In memory there is no CA file: the ready line carries the PEM itself.
  const ready = { event: 'ready', ...broker.runtime(), ...(opts.inMemory ? { caPem: broker.pki?.caPem } : { caFile: broker.pki?.caCertPath }) }
  if (opts.json) print(JSON.stringify(ready))
  else for (const l of banner(broker)) print(l)
  if (process.send) process.send(ready)

  await new Promise<void>((resolve) => {
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      broker.log.info({ signal }, 'shutting down')
      // A shutdown that gave up on Redis fails the commands still pending in libraries that never
      // awaited them (aedes-persistence-redis): that must not turn a clean exit into a crash.
      process.on('unhandledRejection', (err) => broker.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'ignored while shutting down'))
      const t0 = Date.now()
      broker
        .close()
        .then(() => (context && !opts.context ? context.close() : undefined))
        .finally(() => {
          broker.log.info({ ms: Date.now() - t0 }, 'stopped')
          // Closed and flushed: timers of libraries that were waiting on Redis (reconnects, connect
          // timeouts) must not keep a stopped broker alive. Unref'd: fires only if something lingers.
          setTimeout(() => process.exit(process.exitCode ?? 0), 300).unref()
        })
        .then(resolve, resolve)
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('disconnect', () => undefined)
  })
}

/**
 * The package's bin/run.js: the nearest one above this module, which runs from dist/service/ when
 * installed and from a test build's copy of src/ under `npm test`.
 */
function edgemqBin(): string {
  const root = findUp(dirname(fileURLToPath(import.meta.url)), join('bin', 'run.js'))
  if (!root) throw new EdgeMqError('cannot find bin/run.js above the edgemq package', { hint: 'reinstall edgemq' })
  return join(root, 'bin', 'run.js')
}

/** Spawns `edgemq broker start` detached; resolves with its runtime once it listens. */
export async function startBrokerDaemon(opts: BrokerProcessOptions, argv: string[]): Promise<BrokerRuntime & { log: string }> {
  refuseIfRunning(opts.home, opts)
  if (opts.inMemory) {
    ensureHomeDir(opts.home) // for broker.json and broker.log only
  } else {
    // Make sure the hub exists before the child starts (and say so once, here).
    if (opts.cluster) await attachClusterStore(opts.home, opts.cluster)
    const ctx = await openHub({ home: opts.home, createDefault: true })
    await ctx.close()
  }
  const log = homePaths(opts.home).logs
  const fd = openSync(log, 'a', 0o600)
  const bin = edgemqBin()
  const args = [bin, 'broker', 'start', ...argv.filter((a) => a !== 'start' && a !== 'broker'), '--home', opts.home, '-o', 'json']
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd, 'ipc'], env: { ...process.env, EDGEMQ_DAEMON: '1' } })
  const rt = await new Promise<BrokerRuntime>((resolve, reject) => {
    child.once('message', (m) => resolve(m as BrokerRuntime))
    child.once('exit', (code) => reject(new EdgeMqError(`the broker exited during start (code ${code})`, { hint: `see ${log}` })))
    child.once('error', reject)
  })
  child.removeAllListeners('exit')
  child.disconnect()
  child.unref()
  return { ...rt, log }
}

/** A `hub export` file (or az device list) for `broker start --import`. */
export function parseImportFile(file: string): unknown {
  const text = readDocument(file)
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new InvalidDocumentError(`${file} is not valid JSON: ${(err as Error).message}`)
  }
}
