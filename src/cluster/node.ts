/**
 * One broker node of a cluster sharing a hub on Redis (`broker start --cluster redis://…`, or a
 * home made with `hub init --store redis://…`). What the node adds to the single broker:
 *
 * - the bus: mqemitter-redis (see mq.ts) and MQTT state in aedes-persistence-redis, so
 *   messages, retained, persistent sessions and client-id takeover work across nodes;
 * - the node registry `edgemq:<hub>:nodes` (hash nodeId → NodeInfo, refreshed every 2 s;
 *   entries older than 10 s are dead and pruned): `broker status` lists nodes and their clients;
 * - `edgemq:<hub>:sessions` (clientId → nodeId): where a device is connected, so a direct
 *   method invoked through any node is routed over Redis pub/sub (`edgemq:<hub>:rpc:<nodeId>`)
 *   to the node holding the session, which runs it and answers on the caller's channel;
 * - bridge leader election: `edgemq:<hub>:bridge-leader` is taken with SET NX PX 5000 and renewed
 *   every 1.5 s; only the holder's bridge connects to `$upstream`. A dead leader's lock expires
 *   within 5 s and another node takes it on its next try (≤ 6.5 s). A leader that cannot renew
 *   (Redis away) steps down before its lock can expire, so two bridges never run at once.
 *
 * Twin desired patches and `$edgeHub` changes need nothing here: every node follows the shared
 * change feed (RedisStore.watch pushes, the 200 ms poll backs it up) and the node holding the
 * session pushes the patch.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'

import type { Redis } from 'ioredis'
import type { MQEmitter } from 'mqemitter'
import type { Logger } from 'pino'

import type { BridgeStatus, LocalPublisher } from '../bridge/bridge.js'
import type { ForwardQueue } from '../bridge/queue.js'
import type { ClusterHost, MethodResult } from '../broker/host.js'
import { createPersistence, type PersistenceHandle } from '../broker/persistence.js'
import { readRuntime, writeRuntime } from '../broker/runtime.js'
import { EdgeMqError, fromWireError, TimeoutError, toWireError, type WireError } from '../errors.js'
import type { TwinKey } from '../registry/types.js'
import { ClusterBridge } from './bridge.js'
import { createClusterMq, type ClusterMq } from './mq.js'
import { connectRedis, parseRedisUrl } from './redis.js'

export const HEARTBEAT_MS = 2000
export const NODE_TTL_MS = 10_000
export const LOCK_TTL_MS = 5000
export const LOCK_RENEW_MS = 1500

export interface NodeInfo {
  nodeId: string
  pid: number
  hostname: string
  host: string
  ports: Record<string, number | undefined>
  startedAt: string
  heartbeatAt: string
  leader: boolean
  clients: string[]
}

export function clusterKeys(hub: string) {
  const p = `edgemq:${hub}:`
  return {
    nodes: `${p}nodes`,
    sessions: `${p}sessions`,
    leader: `${p}bridge-leader`,
    upstream: `${p}upstream`,
    rpc: (nodeId: string) => `${p}rpc:${nodeId}`,
    mqttPrefix: `${p}mqtt:`,
  }
}

/** The cluster's live nodes (fresh heartbeat), pruning dead entries on the way. */
export async function listNodes(redis: Redis, hub: string): Promise<NodeInfo[]> {
  const keys = clusterKeys(hub)
  const all = await redis.hgetall(keys.nodes)
  const live: NodeInfo[] = []
  const dead: string[] = []
  for (const [id, doc] of Object.entries(all)) {
    try {
      const n = JSON.parse(doc) as NodeInfo
      if (Date.now() - Date.parse(n.heartbeatAt) <= NODE_TTL_MS) live.push(n)
      else dead.push(id)
    } catch {
      dead.push(id)
    }
  }
  if (dead.length > 0) await redis.hdel(keys.nodes, ...dead)
  return live.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0))
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`
const FORGET_SESSION = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end`

type RpcMessage =
  | { type: 'invoke'; id: string; from: string; key: TwinKey; methodName: string; payload: unknown; timeoutSecs: number }
  | { type: 'result'; id: string; ok: true; result: MethodResult }
  /** A failure crosses nodes as it crosses HTTP: the one typed-error ↔ wire mapping (src/errors.ts). */
  | { type: 'result'; id: string; ok: false; error: WireError }

interface PendingRpc {
  resolve(r: MethodResult): void
  reject(err: Error): void
  timer: NodeJS.Timeout
}

function clientIdOf(key: TwinKey): string {
  return key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId
}

export class ClusterNode {
  readonly nodeId: string
  readonly keys: ReturnType<typeof clusterKeys>
  readonly redisDisplay: string
  private broker?: ClusterHost
  private clusterBridge?: ClusterBridge
  private timers: NodeJS.Timeout[] = []
  private readonly pending = new Map<string, PendingRpc>()
  private nodes: NodeInfo[] = []
  private lastRenewOk = 0
  private closed = false
  private draining = false
  private redisDown = false
  private readonly startedAt = new Date().toISOString()

  private constructor(
    readonly url: string,
    readonly hub: string,
    private readonly cmd: Redis,
    private readonly sub: Redis,
    private readonly bus: ClusterMq,
    readonly persistence: PersistenceHandle,
    private readonly log: Logger,
    nodeId: string,
  ) {
    this.nodeId = nodeId
    this.keys = clusterKeys(hub)
    this.redisDisplay = parseRedisUrl(url).display
  }

  /** Connects everything a node needs; a clear error (not a hang) when Redis is unreachable or refuses us. */
  static async create(url: string, hub: string, log: Logger): Promise<ClusterNode> {
    const nodeId = `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`
    const cmd = await connectRedis(url, { name: `edgemq-node-${process.pid}` })
    const closeAll: (() => Promise<void> | void)[] = [() => cmd.disconnect()]
    try {
      const sub = await connectRedis(url, { name: `edgemq-node-sub-${process.pid}` })
      closeAll.push(() => sub.disconnect())
      const keys = clusterKeys(hub)
      const persistence = await createPersistence(undefined, { redis: { url, keyPrefix: keys.mqttPrefix, presence: { sessions: keys.sessions, nodes: keys.nodes } } })
      closeAll.push(() => persistence.close())
      const bus = await createClusterMq({ url, hub, nodeId, cmd, log, liveNodes: async () => (await listNodes(cmd, hub)).map((n) => n.nodeId) })
      return new ClusterNode(url, hub, cmd, sub, bus, persistence, log, nodeId)
    } catch (err) {
      for (const c of closeAll.reverse()) await c()
      throw err
    }
  }

  get mq(): MQEmitter {
    return this.bus.mq
  }

  /** See ClusterMq.whenOpen: the broker's authorizePublish waits here while Redis is away. */
  whenBusOpen(fn: () => void): void {
    this.bus.whenOpen(fn)
  }

  get leader(): boolean {
    return this.clusterBridge?.leader ?? false
  }

  /** The node's bridge: only the elected leader connects upstream. */
  createBridge(aedes: LocalPublisher, mq: MQEmitter, log: Logger, queue: ForwardQueue, onStatus: (s: BridgeStatus) => void): ClusterBridge {
    this.clusterBridge = new ClusterBridge(aedes, mq, log, queue, onStatus, {
      handOff: (topic, payload) => {
        void this.cmd.rpush(this.keys.upstream, JSON.stringify({ t: topic, p: payload.toString('base64') })).catch((err: Error) => log.warn({ err: err.message }, 'cannot hand telemetry to the bridge leader'))
      },
    })
    return this.clusterBridge
  }

  /** Starts the node's duties once the broker listens. */
  async attach(broker: ClusterHost): Promise<void> {
    this.broker = broker
    const a = broker.aedes
    // Client lists in the registry follow connects/disconnects within ~100 ms (not just each heartbeat).
    let soon: NodeJS.Timeout | undefined
    const beatSoon = () => {
      if (soon || this.closed) return
      soon = setTimeout(() => {
        soon = undefined
        void this.heartbeat().catch(() => undefined)
      }, 100)
      soon.unref()
    }
    a.on('client', (client) => {
      void this.cmd.hset(this.keys.sessions, client.id, this.nodeId).catch(() => undefined)
      beatSoon()
    })
    a.on('clientDisconnect', (client) => {
      void this.cmd.eval(FORGET_SESSION, 1, this.keys.sessions, client.id, this.nodeId).catch(() => undefined)
      beatSoon()
    })
    for (const c of [this.cmd, this.sub]) {
      c.on('error', (err: Error) => {
        if (this.redisDown || this.closed) return
        this.redisDown = true
        this.log.warn({ err: err.message, redis: this.redisDisplay }, 'lost the Redis connection; reconnecting')
      })
      c.on('ready', () => {
        if (!this.redisDown) return
        this.redisDown = false
        this.log.info({ redis: this.redisDisplay }, 'Redis connection restored')
        void this.heartbeat()
      })
    }
    this.sub.on('message', (_channel: string, text: string) => this.onRpc(text))
    await this.sub.subscribe(this.keys.rpc(this.nodeId))
    await this.heartbeat()
    await this.bus.ready
    await this.elect()
    const every = (ms: number, fn: () => Promise<void>) => {
      const t = setInterval(() => void fn().catch((err: Error) => this.log.debug({ err: err.message }, 'cluster duty failed')), ms)
      t.unref()
      this.timers.push(t)
    }
    every(HEARTBEAT_MS, () => this.heartbeat())
    every(LOCK_RENEW_MS, () => this.elect())
    every(250, () => this.drainHandoffs())
    this.log.info({ node: this.nodeId, redis: this.redisDisplay, nodes: this.nodes.length }, 'joined the cluster')
  }

  private async heartbeat(): Promise<void> {
    const b = this.broker
    if (!b || this.closed) return
    const info: NodeInfo = {
      nodeId: this.nodeId,
      pid: process.pid,
      hostname: hostname(),
      host: b.host,
      ports: { ...b.ports },
      startedAt: this.startedAt,
      heartbeatAt: new Date().toISOString(),
      leader: this.leader,
      clients: b.sessions.clientIds().sort(),
    }
    const pipe = this.cmd.multi().hset(this.keys.nodes, this.nodeId, JSON.stringify(info))
    for (const id of info.clients) pipe.hset(this.keys.sessions, id, this.nodeId)
    await pipe.exec()
    // A client that left while the write was on its way would stay listed here for good (it
    // reads as connected to this node: no queue bound, methods routed here): take it out again.
    const now = new Set(b.sessions.clientIds())
    for (const id of info.clients) if (!now.has(id)) await this.cmd.eval(FORGET_SESSION, 1, this.keys.sessions, id, this.nodeId)
    this.nodes = await listNodes(this.cmd, this.hub)
    // For the bus' re-subscribe barrier after a Redis drop: the nodes heartbeating lately (one that
    // already missed beats is likely dead, and waiting for it would hold publishes for nothing).
    const listedAt = Date.now()
    this.bus.notePeers(this.nodes.filter((n) => listedAt - Date.parse(n.heartbeatAt) <= 2 * HEARTBEAT_MS + 1000).map((n) => n.nodeId))
    // Several nodes may share a home: keep <home>/broker.json naming a live one for the CLI.
    const { paths } = b.ctx
    if (b.writesRuntimeFile) {
      if (!readRuntime(paths.brokerState)) writeRuntime(paths.brokerState, b.runtime())
    }
  }

  /** Takes or renews the bridge lock; steps down when it cannot prove it still holds it. */
  private async elect(): Promise<void> {
    const bridge = this.clusterBridge
    if (!bridge || this.closed) return
    try {
      if (bridge.leader) {
        const ok = Number(await this.cmd.eval(RENEW, 1, this.keys.leader, this.nodeId, String(LOCK_TTL_MS))) === 1
        if (ok) this.lastRenewOk = Date.now()
        else this.stepDown('lost the bridge lock')
      } else {
        const r = await this.cmd.set(this.keys.leader, this.nodeId, 'PX', LOCK_TTL_MS, 'NX')
        if (r === 'OK') {
          this.lastRenewOk = Date.now()
          this.log.info({ node: this.nodeId }, 'bridge leader: this node runs the bridge to $upstream')
          bridge.setLeader(true)
          void this.heartbeat().catch(() => undefined)
        }
      }
    } catch (err) {
      if (bridge.leader && Date.now() - this.lastRenewOk > LOCK_TTL_MS - LOCK_RENEW_MS) this.stepDown(`cannot renew the bridge lock: ${(err as Error).message}`)
    }
  }

  private stepDown(reason: string): void {
    if (!this.clusterBridge?.leader) return
    this.log.warn({ node: this.nodeId, reason }, 'bridge leader: stepping down')
    this.clusterBridge.setLeader(false)
  }

  /** The leader moves telemetry other nodes routed to `$upstream` into its durable queue. */
  private async drainHandoffs(): Promise<void> {
    const bridge = this.clusterBridge
    if (!bridge?.leader || this.draining) return
    this.draining = true
    try {
      for (;;) {
        const batch = await this.cmd.lpop(this.keys.upstream, 100)
        if (!batch || batch.length === 0) return
        for (const item of batch) {
          const { t, p } = JSON.parse(item) as { t: string; p: string }
          bridge.enqueueTelemetry(t, Buffer.from(p, 'base64'))
        }
      }
    } finally {
      this.draining = false
    }
  }

  // ---- direct methods across nodes ----

  /**
   * Invokes a direct method on a device connected to ANOTHER node (this node has no session).
   * Rejects with `notOnline` when no live node holds the device's session.
   */
  async invokeMethod(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number, notOnline: Error): Promise<MethodResult> {
    const owner = await this.cmd.hget(this.keys.sessions, clientIdOf(key))
    if (!owner || owner === this.nodeId) throw notOnline
    const live = await listNodes(this.cmd, this.hub)
    if (!live.some((n) => n.nodeId === owner)) throw notOnline
    const id = `${this.nodeId}:${randomBytes(6).toString('hex')}`
    const msg: RpcMessage = { type: 'invoke', id, from: this.nodeId, key, methodName, payload, timeoutSecs }
    return new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new TimeoutError(`${clientIdOf(key)} did not answer method "${methodName}" within ${timeoutSecs} s (via node ${owner})`))
      }, timeoutSecs * 1000 + 3000)
      this.pending.set(id, { resolve, reject, timer })
      this.cmd.publish(this.keys.rpc(owner), JSON.stringify(msg)).then(
        (receivers) => {
          if (receivers > 0) return
          clearTimeout(timer)
          this.pending.delete(id)
          reject(notOnline)
        },
        (err: Error) => {
          clearTimeout(timer)
          this.pending.delete(id)
          reject(err)
        },
      )
    })
  }

  private onRpc(text: string): void {
    let msg: RpcMessage
    try {
      msg = JSON.parse(text) as RpcMessage
    } catch {
      return
    }
    if (msg.type === 'result') {
      const p = this.pending.get(msg.id)
      if (!p) return
      this.pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(fromWireError(msg.error.status, msg.error.body))
      return
    }
    const broker = this.broker
    if (!broker) return
    const { id, from } = msg
    const reply = (r: RpcMessage) => void this.cmd.publish(this.keys.rpc(from), JSON.stringify(r)).catch(() => undefined)
    broker.invokeMethodLocally(msg.key, msg.methodName, msg.payload, msg.timeoutSecs).then(
      (result) => reply({ type: 'result', id, ok: true, result }),
      (err: Error) => reply({ type: 'result', id, ok: false, error: toWireError(err) }),
    )
  }

  /** For the broker's status: this node and the cluster's live nodes (as of the last heartbeat). */
  snapshot() {
    return { node: this.nodeId, redis: this.redisDisplay, leader: this.leader, nodes: this.nodes }
  }

  /**
   * Runs the broker's shutdown (`work`) without hanging on a Redis that is gone: the connections
   * wait for Redis forever (a restart must not drop work), a stopping node must not. Once Redis is
   * away (now, or at any point of the shutdown) or `budgetMs` passed, logs that it gave up, drops
   * every Redis connection (pending commands fail at once) and gives `work` a last moment to finish.
   */
  async shutdown(work: () => Promise<void>, budgetMs = 2000): Promise<void> {
    const conns = [this.cmd, this.sub, ...this.bus.connections, ...this.persistence.connections]
    const running = work()
    let onGone: () => void = () => undefined
    const gone = new Promise<'gone'>((resolve) => (onGone = () => resolve('gone')))
    if (conns.some((c) => c.status !== 'ready')) onGone()
    for (const c of conns) c.once('close', onGone)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), budgetMs)))
    const first = await Promise.race([running.then(() => 'done' as const), gone, late])
    clearTimeout(timer)
    for (const c of conns) c.removeListener('close', onGone)
    if (first === 'done') return
    this.log.warn({ redis: this.redisDisplay, reason: first === 'gone' ? 'Redis connection lost' : `no answer within ${budgetMs} ms` }, 'shutting down: gave up waiting on Redis')
    for (const c of conns) c.disconnect()
    let wait: NodeJS.Timeout | undefined
    await Promise.race([running.catch(() => undefined), new Promise((r) => (wait = setTimeout(r, 500)))])
    clearTimeout(wait)
    // Timers, pending calls and the bus, in case `work` is still stuck before it got here.
    await this.close()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const t of this.timers) clearInterval(t)
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      p.reject(new EdgeMqError('the broker node is shutting down'))
    }
    this.pending.clear()
    const tidy = async () => {
      if (this.clusterBridge?.leader) await this.cmd.eval(RELEASE, 1, this.keys.leader, this.nodeId)
      await this.cmd.hdel(this.keys.nodes, this.nodeId)
      const mine = (await this.cmd.hgetall(this.keys.sessions)) ?? {}
      const ids = Object.entries(mine).filter(([, n]) => n === this.nodeId).map(([c]) => c)
      for (const c of ids) await this.cmd.eval(FORGET_SESSION, 1, this.keys.sessions, c, this.nodeId)
    }
    // Best effort, bounded: a node shutting down while Redis is away must still exit.
    await Promise.race([tidy().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))])
    await this.bus.close()
    this.sub.disconnect()
    this.cmd.disconnect()
  }
}
