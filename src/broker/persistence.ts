/**
 * MQTT persistence: retained messages, persistent sessions (clean=false) and queued QoS1
 * messages. On disk it is aedes-persistence-level over LevelDB (classic-level), its writes
 * grouped into one LevelDB batch per tick (group-commit.ts): each write reaches the OS before it
 * is acknowledged, so `kill -9` of the broker loses nothing acknowledged. In memory for `--in-memory` hubs. A cluster node uses aedes-persistence-redis
 * instead (`opts.redis`), so every node sees the same sessions, retained messages and queues.
 */
import { mkdirSync } from 'node:fs'
import { Readable } from 'node:stream'

import { ClassicLevel } from 'classic-level'
import memoryPersistence from 'aedes-persistence'
import levelPersistence from 'aedes-persistence-level'

import type { Redis } from 'ioredis'

import type { ClusterPresence } from '../cluster/session-queue.js'

import { EdgeMqError } from '../errors.js'
import { GroupCommitLevel } from './group-commit.js'
import type { SharedQueue } from './session-store.js'
import { scanStoredClients, skipStatelessClients } from './stored-clients.js'

export interface PersistenceHandle {
  persistence: unknown
  /** Redis: the session queues are shared by the cluster's nodes and bounded in Redis. */
  queue?: SharedQueue
  /** Its Redis connections, if any. */
  connections: Redis[]
  close(): Promise<void>
}

export interface PersistenceOptions {
  /** Cluster: MQTT state in Redis under `keyPrefix` (one hub's nodes share it). */
  redis?: { url: string; keyPrefix: string; presence: ClusterPresence }
}

export async function createPersistence(dir: string | undefined, opts: PersistenceOptions = {}): Promise<PersistenceHandle> {
  if (opts.redis) {
    // Loaded only for a cluster node: ioredis and msgpack cost ~0.1 s of every broker's start-up.
    const [{ default: redisPersistence }, { connectRedis }, { queuedMessages, redisQueueBound }] = await Promise.all([
      import('aedes-persistence-redis'),
      import('../cluster/redis.js'),
      import('../cluster/session-queue.js'),
    ])
    // Commands wait out a Redis restart (no per-request retry limit): nothing acknowledged is dropped.
    const conn = await connectRedis(opts.redis.url, { keyPrefix: opts.redis.keyPrefix, name: `edgemq-mqtt-${process.pid}` })
    const persistence = redisPersistence({ conn }) as { outgoingStream(client: { id: string }): Readable }
    // Its own outgoingStream reads at most maxSessionDelivery messages per resume: page instead.
    persistence.outgoingStream = (client) => Readable.from(queuedMessages(conn, client.id))
    return {
      persistence,
      queue: redisQueueBound(conn, opts.redis.keyPrefix, opts.redis.presence),
      connections: [conn],
      close: async () => {
        if (conn.status === 'ready') await Promise.race([conn.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 500))])
        conn.disconnect()
      },
    }
  }
  if (!dir) {
    // In memory: nothing is stored at start, and the same index spares every stateless client the
    // persistence's per-connection queue and subscription work.
    const persistence = memoryPersistence()
    skipStatelessClients(persistence, new Set())
    return { persistence, connections: [], close: async () => undefined }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const db = new ClassicLevel<string, Buffer>(dir, { valueEncoding: 'buffer' })
  try {
    await db.open()
  } catch (err) {
    const cause = (err as { cause?: Error }).cause?.message ?? (err as Error).message
    if (/lock/i.test(cause)) {
      throw new EdgeMqError(`another broker is using ${dir}`, { hint: 'stop it with `edgemq broker stop`, or use another --home' })
    }
    throw new EdgeMqError(`cannot open the broker persistence in ${dir}: ${cause}`)
  }
  const stored = await scanStoredClients(db)
  const grouped = new GroupCommitLevel(db)
  const persistence = levelPersistence(grouped as never)
  skipStatelessClients(persistence, stored)
  return {
    persistence,
    connections: [],
    close: () => grouped.close(),
  }
}
