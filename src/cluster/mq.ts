/**
 * The cluster's message bus: mqemitter-redis (what aedes clusters use), with the hub's channel
 * prefix so several hubs can share one Redis, plus a publish gate that keeps QoS 1 honest across
 * a Redis restart.
 *
 * Why the gate: Redis pub/sub has no memory. After a restart every node's subscriber connection
 * must re-subscribe before anything is published, or a message reaches Redis while the
 * subscribers of another node are not yet back and is silently dropped — after the publisher
 * got its PUBACK. So publishes are held (and the PUBACK with them) while this node's
 * connections are down, and after a reconnect until every live node has announced
 * (`edgemq:<hub>:mq-ready`) that it re-subscribed against the current Redis run (run_id). A
 * publish that fails in flight is retried: at-least-once, duplicates possible, nothing lost.
 */
import { createRequire } from 'node:module'

import type { Redis } from 'ioredis'
import type { MQEmitter, Message } from 'mqemitter'
import type { Logger } from 'pino'

import { INERT_TOPIC } from '../broker/inert-topic.js'
import { connectRedis } from './redis.js'

const require = createRequire(import.meta.url)

type EmitDone = (err?: Error) => void
interface RedisEmitterCtor {
  new (prefix: string, opts: { subConn: Redis; pubConn: Redis; concurrency?: number; matchEmptyLevels?: boolean }): MQEmitter & { state: NodeJS.EventEmitter }
}
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: RedisEmitterCtor }

export interface ClusterMq {
  mq: MQEmitter
  /** Resolves once the gate first opens (this node subscribed and announced itself). */
  ready: Promise<void>
  /**
   * Runs `fn` now if the bus can carry messages, else once it can. aedes sends a QoS 1 PUBACK
   * right after authorizePublish, before it stores or fans out the message, so the broker runs
   * authorizePublish through this: no PUBACK while Redis is away.
   */
  whenOpen(fn: () => void): void
  /** The bus' own Redis connections (a shutdown that gives up on Redis drops them). */
  connections: Redis[]
  /** The nodes heartbeating lately, as this node last listed them: after a drop the barrier waits for them too. */
  notePeers(nodeIds: string[]): void
  close(): Promise<void>
}

export interface ClusterMqOptions {
  url: string
  hub: string
  nodeId: string
  /** The hub's command connection (mq-ready announcements, live-node lookup). */
  cmd: Redis
  /** Ids of nodes whose heartbeat is fresh (the gate waits only for these). */
  liveNodes: () => Promise<string[]>
  log: Logger
  /** Longest a reconnect holds publishes while waiting for other nodes (then it opens anyway). */
  maxHoldMs?: number
}

async function runId(cmd: Redis): Promise<string> {
  const info = await cmd.info('server')
  return /run_id:(\w+)/.exec(info)?.[1] ?? ''
}

export async function createClusterMq(o: ClusterMqOptions): Promise<ClusterMq> {
  // The publisher fails fast while Redis is away (no offline queue, no silent resend): the gate
  // below owns retrying, so nothing is flushed before the subscribers are back.
  const pubConn = await connectRedis(o.url, { name: `edgemq-mq-pub-${process.pid}` })
  pubConn.options.enableOfflineQueue = false
  // Queued-while-offline commands fail at once. Publishes in flight when the socket closes must not
  // be resent by ioredis on reconnect (before the other nodes re-subscribed): with no retries
  // ioredis rejects them at the close (send()'s error path puts them back in `held`), and
  // auto-resend is off as well; `down` moves any still unanswered back to `held`, behind the gate.
  // Any one of the three keeps them behind the gate (checked by breaking them in turn under cluster-inflight.test.ts).
  pubConn.options.maxRetriesPerRequest = 0
  pubConn.options.autoResendUnfulfilledCommands = false
  const subConn = await connectRedis(o.url, { name: `edgemq-mq-sub-${process.pid}` })
  const emitter = new MQEmitterRedisPrefix(`edgemq:${o.hub}/`, { subConn, pubConn, concurrency: 1000, matchEmptyLevels: true })
  emitter.state.on('error', () => undefined)
  const readyKey = `edgemq:${o.hub}:mq-ready`
  const rawEmit = emitter.emit.bind(emitter) as (msg: Message, done?: EmitDone) => void
  const held: [Message, EmitDone | undefined][] = []
  const waiting: (() => void)[] = []
  let open = false
  let closed = false
  let generation = 0
  /**
   * Nodes known live before the connection dropped. The barrier waits for these as well as for
   * the nodes the new Redis lists as live: a Redis restarted empty, or down longer than a
   * heartbeat's TTL, lists only the nodes that heartbeated since, and a publish sent before a
   * node that is not listed yet re-subscribed is lost (after its PUBACK).
   */
  let peers: string[] = []
  const before = new Set<string>()
  let firstOpen: () => void = () => undefined
  const ready = new Promise<void>((r) => (firstOpen = r))

  const flush = () => {
    while (open && held.length > 0) {
      const [msg, done] = held.shift() as [Message, EmitDone | undefined]
      send(msg, done)
    }
    while (open && waiting.length > 0) (waiting.shift() as () => void)()
  }
  /** Sent and not answered yet. `moved`: back in `held` since the connection dropped (its reply will never come). */
  const inflight = new Set<{ msg: Message; done?: EmitDone; moved: boolean }>()
  const send = (msg: Message, done?: EmitDone) => {
    const entry = { msg, done, moved: false }
    inflight.add(entry)
    rawEmit(msg, (err?: Error) => {
      if (entry.moved) return
      inflight.delete(entry)
      if (!err || closed) return done?.(closed ? err : undefined)
      // Lost on the way (Redis went away): hold it and close the gate until the cluster is back.
      held.push([msg, done])
      if (open) {
        open = false
        o.log.warn({ err: err.message }, 'Redis unavailable: holding publishes until the cluster reconnects')
      }
    })
  }
  const gatedEmit = (msg: Message, done?: EmitDone) => {
    // The inert copy aedes publishes after edgemq published the real message: nobody receives it.
    if (msg.topic === INERT_TOPIC) return done?.()
    if (closed) return done?.(new Error('the cluster bus is closed'))
    if (!open) held.push([msg, done])
    else send(msg, done)
  }
  ;(emitter as unknown as { emit: typeof gatedEmit }).emit = gatedEmit
  // aedes.close() ends with mq.close(), which QUITs both connections: bounded, so a node told to
  // stop while Redis is away still exits.
  const rawClose = emitter.close.bind(emitter) as (cb: () => void) => void
  ;(emitter as unknown as { close: (cb?: () => void) => void }).close = (cb) => {
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(t)
      cb?.()
    }
    const t = setTimeout(() => {
      pubConn.disconnect()
      subConn.disconnect()
      finish()
    }, 1000)
    // mqemitter-redis QUITs without a catch: with Redis away that rejection would crash the exit.
    if (pubConn.status === 'ready' && subConn.status === 'ready') rawClose(finish)
    else {
      pubConn.disconnect()
      subConn.disconnect()
      finish()
    }
  }

  /** After (re)connecting: announce our subscriptions, wait for the other live nodes to do so. */
  const reopen = async () => {
    const gen = ++generation
    try {
      // Commands on one connection run in order: once PING answers, ioredis' re-SUBSCRIBEs are done.
      await subConn.ping()
      const id = await runId(o.cmd)
      await o.cmd.hset(readyKey, o.nodeId, id)
      const deadline = Date.now() + (o.maxHoldMs ?? 3000)
      for (;;) {
        if (gen !== generation || closed) return
        const live = new Set([...(await o.liveNodes()), ...before])
        live.add(o.nodeId)
        const marks = await o.cmd.hmget(readyKey, ...live)
        if (marks.every((m) => m === id)) break
        if (Date.now() > deadline) {
          o.log.warn({ waitingFor: [...live].filter((_, i) => marks[i] !== id) }, 'some nodes did not re-subscribe in time; publishing anyway')
          break
        }
        await new Promise((r) => setTimeout(r, 50))
      }
      if (gen !== generation || closed) return
      if (pubConn.status !== 'ready' || subConn.status !== 'ready') return
      const wasHeld = held.length + waiting.length
      before.clear()
      open = true
      if (wasHeld > 0) o.log.info({ held: held.length, waiting: waiting.length }, 'cluster bus open: sending held publishes')
      firstOpen()
      flush()
    } catch (err) {
      if (!closed) setTimeout(() => void reopen(), 200)
      o.log.debug({ err: (err as Error).message }, 'cluster bus not ready yet')
    }
  }
  const down = () => {
    if (open && !closed) o.log.warn('Redis connection lost: holding publishes until the cluster reconnects')
    open = false
    generation++
    for (const id of peers) before.add(id)
    // Unanswered publishes are sent again once the cluster is back (at least once), ahead of what came since.
    if (pubConn.status !== 'ready' && inflight.size > 0) {
      const unanswered = [...inflight]
      inflight.clear()
      for (const e of unanswered) e.moved = true
      held.unshift(...unanswered.map((e): [Message, EmitDone | undefined] => [e.msg, e.done]))
    }
  }
  for (const c of [pubConn, subConn]) {
    c.on('close', down)
    c.on('ready', () => {
      if (pubConn.status === 'ready' && subConn.status === 'ready') void reopen()
    })
  }
  void reopen()

  return {
    mq: emitter,
    ready,
    connections: [pubConn, subConn],
    notePeers: (nodeIds) => {
      peers = nodeIds
    },
    whenOpen: (fn) => {
      if (open || closed) fn()
      else waiting.push(fn)
    },
    close: async () => {
      closed = true
      for (const [, done] of held.splice(0)) done?.(new Error('the cluster bus is closed'))
      for (const fn of waiting.splice(0)) fn()
      // Bounded: the command connection waits for Redis forever, a stopping node must not.
      await Promise.race([o.cmd.hdel(readyKey, o.nodeId).catch(() => undefined), new Promise((r) => setTimeout(r, 500))])
      await new Promise<void>((r) => emitter.close(() => r()))
      pubConn.disconnect()
      subConn.disconnect()
    },
  }
}
