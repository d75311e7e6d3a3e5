/**
 * Bridge soak (issue 21 "Must show"): two real `edgemq broker start` processes, parent and child,
 * wired as the README's nested-edge example. The parent is killed (SIGKILL) and restarted on the
 * same ports every --kill-every seconds while a device on the child publishes QoS1 messages on
 * --topics topics (each with its own sequence), plus a poison topic the parent's policy refuses to
 * the child edge device every --poison-every seconds. A watcher on the parent records what arrives.
 *
 * The bridge reaches the parent through a TCP gate in this process: after a restart it opens only
 * once the watcher is connected and subscribed again, so that nothing the parent accepts from the
 * bridge goes to nobody. The watcher uses a clean session by default; `--watcher persistent` gives it
 * a persistent one (clean=false), which on the parent's LevelDB persistence runs into aedes' own
 * loss and reordering of QoS1 deliveries to a persistent subscriber under a concurrent burst
 * (reproducible with raw aedes 1.2 + aedes-persistence-level, no edgemq involved).
 *
 * Every minute: sent, arrived, duplicates, queued, dead-lettered, parent restarts, RSS of both
 * brokers. At the end (after the child's queue drained): per topic in-order / duplicates / lost,
 * the poison messages dead-lettered (and none arrived), and RSS over time.
 *
 *   npm run soak:bridge -- --minutes 10 [--rate 30] [--topics 3] [--kill-every 30] [--poison-every 10]
 *
 * Exit 1 when the parent did not acknowledge every allowed message, one went missing other than
 * in a parent SIGKILL right after the parent acknowledged it (a clean-session watcher cannot get
 * what a crashed parent had not delivered yet; that is the parent's, not the bridge's), a topic's
 * first arrivals were out of order, a poison message reached the parent, or a poison message was
 * neither dead-lettered nor still queued.
 */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { connect as mqttConnect, type MqttClient } from 'mqtt'

import { startBroker, type BrokerProc } from '../test/helpers/broker.js'
import { BIN, SEED_FIXTURES } from '../test/helpers/paths.js'
import { freePort } from '../test/helpers/ports.js'

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '30' },
    topics: { type: 'string', default: '3' },
    'kill-every': { type: 'string', default: '30' },
    'poison-every': { type: 'string', default: '10' },
    'drain-timeout': { type: 'string', default: '180' },
    watcher: { type: 'string', default: 'clean' },
  },
})
const PERSISTENT_WATCHER = opts.watcher === 'persistent'
const MINUTES = Number(opts.minutes)
const RATE = Number(opts.rate)
const TOPICS = Number(opts.topics)
const KILL_EVERY_MS = Number(opts['kill-every']) * 1000
const POISON_EVERY_MS = Number(opts['poison-every']) * 1000
const DRAIN_TIMEOUT_MS = Number(opts['drain-timeout']) * 1000

const env = { ...process.env, NODE_OPTIONS: undefined, NO_COLOR: '1' }

function cli(home: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = execFile(process.execPath, [BIN, ...args], { env: { ...env, EDGEMQ_HOME: home }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`edgemq ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout),
    )
    if (input !== undefined) p.stdin?.end(input)
    else p.stdin?.end()
  })
}

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix))

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Math.round(Number(m[1]) / 1024) : NaN
  } catch {
    return NaN
  }
}

const policy = (statements: unknown[]) => JSON.stringify({ schemaVersion: '1.2', mqttBroker: { authorizations: statements } })

async function main(): Promise<void> {
  const parentHome = tmp('edgemq-soak-parent-')
  const childHome = tmp('edgemq-soak-child-')
  await Promise.all([cli(parentHome, ['hub', 'init', '--name', 'parenthub']), cli(childHome, ['hub', 'init', '--name', 'childhub'])])
  await cli(parentHome, ['device', 'create', 'child-edge', '--edge'])
  await Promise.all([cli(parentHome, ['device', 'create', 'watcher']), cli(childHome, ['device', 'create', 'local'])])
  await cli(
    parentHome,
    ['edgehub', 'set', '-'],
    policy([
      { identities: ['child-edge'], deny: [{ operations: ['mqtt:publish'], resources: ['/remote/messages/poison/#'] }] },
      { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] },
      { identities: ['child-edge', 'watcher'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['/remote/messages/#'] }] },
    ]),
  )
  await cli(childHome, ['edgehub', 'set', '-'], policy([{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['/local/telemetry/#'] }] }]))
  await cli(childHome, ['edgehub', 'set', `${SEED_FIXTURES}/seed-bridge.json`])

  // The parent keeps its ports across restarts, so the child's upstream and the watcher stay valid.
  const parentArgs = ['--port', String(await freePort()), '--tls-port', String(await freePort()), '--log-level', 'warn']
  let parent: BrokerProc = await startBroker(parentHome, parentArgs)
  // The gate: child bridge → this port → the parent's TLS port, refused while closed.
  const gate = { open: true, sockets: new Set<Socket>(), refused: 0, accepted: 0 }
  const gateServer = createServer((inbound) => {
    if (!gate.open) {
      gate.refused++
      return inbound.destroy()
    }
    gate.accepted++
    const outbound = netConnect(parent.ports.mqtts, '127.0.0.1')
    for (const [a, b] of [[inbound, outbound], [outbound, inbound]] as const) {
      gate.sockets.add(a)
      a.on('error', () => b.destroy())
      a.on('close', () => {
        gate.sockets.delete(a)
        b.destroy()
      })
      a.pipe(b)
    }
  })
  gateServer.listen(0, '127.0.0.1')
  await once(gateServer, 'listening')
  const gatePort = (gateServer.address() as AddressInfo).port
  const cs = (await cli(parentHome, ['connection-string', 'show', '--device', 'child-edge', '--gateway', 'localhost', '-o', 'tsv'])).trim()
  await cli(childHome, ['hub', 'set-upstream', '--connection-string', cs, '--port', String(gatePort), '--ca', parent.caFile])
  const child = await startBroker(childHome, ['--log-level', 'warn'])

  const sas = async (home: string, id: string) => (await cli(home, ['sas', '--device', id, '--raw', '--duration', String(24 * 3600)])).trim()
  const mqttClient = (port: number, hub: string, id: string, password: string, clean: boolean): MqttClient =>
    mqttConnect({ host: '127.0.0.1', port, clientId: id, username: `${hub}.azure-devices.net/${id}/?api-version=2018-06-30`, password, protocolVersion: 4, clean, reconnectPeriod: 500, connectTimeout: 10_000, keepalive: 30 })

  // The watcher: QoS1 on everything the bridge sends; after a parent restart it subscribes again, then opens the gate.
  const watcher = mqttClient(parent.ports.mqtt, 'parenthub', 'watcher', await sas(parentHome, 'watcher'), !PERSISTENT_WATCHER)
  watcher.on('error', () => undefined)
  await new Promise<void>((r) => watcher.once('connect', () => r()))
  let watcherConnects = 0
  watcher.on('connect', () => {
    watcherConnects++
    watcher.subscribeAsync('/remote/messages/#', { qos: 1 }).then(
      () => (gate.open = true),
      () => undefined,
    )
  })
  await watcher.subscribeAsync('/remote/messages/#', { qos: 1 })

  const topics = Array.from({ length: TOPICS }, (_, i) => `t${i}`)
  const sent = new Map(topics.map((t) => [t, 0]))
  const arrivals = new Map(topics.map((t) => [t, [] as number[]]))
  /** When the child acknowledged each message (by `topic/n`), and when the parent was killed. */
  const pubAt = new Map<string, number>()
  const kills: number[] = []
  let poisonSent = 0
  let poisonArrived = 0
  watcher.on('message', (topic, payload) => {
    const name = topic.slice('/remote/messages/'.length)
    if (name.startsWith('poison')) return void poisonArrived++
    arrivals.get(name)?.push(Number(payload.toString()))
  })

  const local = mqttClient(child.ports.mqtt, 'childhub', 'local', await sas(childHome, 'local'), true)
  local.on('error', () => undefined)
  await new Promise<void>((r) => local.once('connect', () => r()))

  const started = Date.now()
  const endAt = started + MINUTES * 60_000
  let restarts = 0
  let killing = false
  const rss: { minute: number; child: number; parent: number }[] = []

  // Publisher: RATE messages a second round-robin over the topics, each awaited (QoS1 PUBACK after the child queued it).
  const publisher = (async () => {
    let i = 0
    let nextPoison = started + POISON_EVERY_MS
    const interval = 1000 / RATE
    let next = Date.now()
    while (Date.now() < endAt) {
      const t = topics[i++ % topics.length]
      const n = (sent.get(t) ?? 0) + 1
      await local.publishAsync(`/local/telemetry/${t}`, String(n), { qos: 1 })
      sent.set(t, n)
      pubAt.set(`${t}/${n}`, Date.now())
      if (Date.now() >= nextPoison) {
        nextPoison += POISON_EVERY_MS
        await local.publishAsync('/local/telemetry/poison/p', `poison ${++poisonSent}`, { qos: 1 })
      }
      next += interval
      const wait = next - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
  })()

  // Killer: SIGKILL the parent and start it again on the same ports.
  const killer = setInterval(() => {
    if (killing || Date.now() >= endAt) return
    killing = true
    void (async () => {
      gate.open = false
      kills.push(Date.now())
      await parent.kill()
      parent = await startBroker(parentHome, parentArgs)
      restarts++
    })()
      .catch((err: Error) => console.error(`parent restart failed: ${err.message}`))
      .finally(() => (killing = false))
  }, KILL_EVERY_MS)

  const status = async () => {
    const s = JSON.parse(await cli(childHome, ['broker', 'status'])) as { bridges: { state: string; queueLength: number; deadLettered: number; forwarded: number; expired: number; dropped: number }[] }
    return s.bridges[0]
  }
  const counts = () => {
    let total = 0
    let unique = 0
    for (const t of topics) {
      const a = arrivals.get(t) ?? []
      total += a.length
      unique += new Set(a).size
    }
    return { total, unique, dup: total - unique, sent: [...sent.values()].reduce((x, y) => x + y, 0) }
  }
  console.log(`bridge soak: ${MINUTES} min, ${RATE} msg/s over ${TOPICS} topics, poison every ${POISON_EVERY_MS / 1000} s, parent SIGKILLed every ${KILL_EVERY_MS / 1000} s, ${PERSISTENT_WATCHER ? 'persistent' : 'clean'} watcher`)
  console.log('min  sent    arrived  unique  dup  queued  deadLettered  poisonSent  restarts  RSS child  RSS parent')
  const report = async (minute: number) => {
    const c = counts()
    const b = await status().catch(() => undefined)
    const r = { minute, child: rssMb(child.pid), parent: rssMb(parent.pid) }
    rss.push(r)
    console.log(
      `${String(minute).padStart(3)}  ${String(c.sent).padEnd(6)}  ${String(c.total).padEnd(7)}  ${String(c.unique).padEnd(6)}  ${String(c.dup).padEnd(3)}  ${String(b?.queueLength ?? '?').padEnd(6)}  ${String(b?.deadLettered ?? '?').padEnd(12)}  ${String(poisonSent).padEnd(10)}  ${String(restarts).padEnd(8)}  ${String(r.child).padStart(6)} MB  ${String(r.parent).padStart(7)} MB`,
    )
  }
  await report(0)
  let minute = 0
  const reporter = setInterval(() => void report(++minute), 60_000)

  await publisher
  clearInterval(killer)
  while (killing) await new Promise((r) => setTimeout(r, 100))
  clearInterval(reporter)

  // Drain: the child's queue is empty, the parent acknowledged every allowed message, and
  // nothing arrived for 5 s (or everything did), or the timeout.
  const drainStart = Date.now()
  let lastUnique = -1
  let quietSince = Date.now()
  for (;;) {
    const c = counts()
    const b = await status().catch(() => undefined)
    if (c.unique !== lastUnique) {
      lastUnique = c.unique
      quietSince = Date.now()
    }
    const handedOver = b?.queueLength === 0 && (b?.forwarded ?? 0) >= c.sent
    if (handedOver && (c.unique >= c.sent || Date.now() - quietSince > 5000)) break
    if (Date.now() - drainStart > DRAIN_TIMEOUT_MS) {
      console.log(`drain timed out after ${DRAIN_TIMEOUT_MS / 1000} s: ${JSON.stringify({ ...c, bridge: b })}`)
      break
    }
    await new Promise((r) => setTimeout(r, 1000))
  }
  await report(Math.round((Date.now() - started) / 60_000))
  const finalStatus = await status()
  const dead = JSON.parse(await cli(childHome, ['bridge', 'dead-letters', 'list'])) as { total: number; items: { topic: string; payload: string }[] }

  console.log('\nper topic:')
  let failed = false
  let lostInParent = 0
  for (const t of topics) {
    const a = arrivals.get(t) ?? []
    const n = sent.get(t) ?? 0
    const seen = new Set<number>()
    let outOfOrder = 0
    let dup = 0
    let last = 0
    for (const x of a) {
      if (seen.has(x)) {
        dup++
        continue
      }
      seen.add(x)
      if (x < last) outOfOrder++
      last = Math.max(last, x)
    }
    // A lost message the parent acknowledged right before it was SIGKILLed went down with the parent
    // (the watcher's clean session keeps nothing across a parent crash): not the bridge's.
    const lost: string[] = []
    let inCrash = 0
    for (let k = 1; k <= n; k++) {
      if (seen.has(k)) continue
      const at = pubAt.get(`${t}/${k}`) ?? 0
      const kill = kills.find((x) => x >= at)
      const beforeKill = kill === undefined ? undefined : kill - at
      if (beforeKill !== undefined && beforeKill <= 2000) inCrash++
      if (lost.length < 10) lost.push(beforeKill === undefined ? `${k}` : `${k} (${beforeKill} ms before kill #${kills.indexOf(kill as number) + 1})`)
    }
    const nLost = n - [...seen].filter((x) => x >= 1 && x <= n).length
    lostInParent += inCrash
    console.log(
      `  ${t}: sent ${n}, arrived ${a.length}, unique ${seen.size}, duplicates ${dup}, lost ${nLost}${nLost ? ` [${lost.join(', ')}]` : ''}${inCrash ? `, of which ${inCrash} acknowledged by the parent ≤ 2 s before it was SIGKILLed` : ''}, first arrivals out of order ${outOfOrder}`,
    )
    if (nLost > inCrash || outOfOrder) failed = true
  }
  const poisonDead = dead.items.filter((i) => i.topic === '/remote/messages/poison/p').length
  console.log(`poison: sent ${poisonSent}, dead-lettered ${poisonDead}, still queued ${finalStatus.queueLength}, reached the parent ${poisonArrived}`)
  console.log(`bridge: forwarded ${finalStatus.forwarded}, expired ${finalStatus.expired}, dropped ${finalStatus.dropped}; parent restarts ${restarts}; watcher reconnects ${watcherConnects}`)
  // Every bridge connection after the first ended with a drop: a parent kill or a poison refusal; each
  // drop re-sends what was in flight (at most the window of 100), so duplicates come only from these.
  console.log(`bridge connections through the gate: ${gate.accepted} (${gate.accepted - 1} drops: ${restarts} parent kills, the rest poison refusals); refused while the gate was closed: ${gate.refused}`)
  const parentStatus = JSON.parse(await cli(parentHome, ['broker', 'status'])) as { sessions?: unknown }
  console.log(`parent sessions: ${JSON.stringify(parentStatus.sessions)}`)
  const childRss = rss.map((r) => r.child).filter((x) => !Number.isNaN(x))
  console.log(`RSS child broker (MB) per minute: ${childRss.join(' ')}`)
  console.log(`RSS parent broker (MB) per minute: ${rss.map((r) => r.parent).join(' ')}`)
  const sentTotal = [...sent.values()].reduce((x, y) => x + y, 0)
  console.log(`handed to the parent (acknowledged): ${finalStatus.forwarded} of ${sentTotal} allowed${lostInParent ? `; ${lostInParent} of them lost in a parent SIGKILL before reaching the clean-session watcher` : ''}`)
  if (finalStatus.forwarded < sentTotal || poisonArrived > 0 || poisonDead + finalStatus.queueLength < poisonSent) failed = true

  watcher.end(true)
  local.end(true)
  for (const sock of gate.sockets) sock.destroy()
  gateServer.close()
  await Promise.all([child.stop(), parent.stop()])
  for (const home of [parentHome, childHome]) rmSync(home, { recursive: true, force: true })
  console.log(failed ? 'FAIL' : 'OK')
  process.exit(failed ? 1 : 0)
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message)
  process.exit(1)
})
