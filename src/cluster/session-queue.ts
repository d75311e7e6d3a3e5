/**
 * A persistent session's offline queue in Redis (aedes-persistence-redis' layout), read and
 * bounded the way the embedded store is:
 *
 * - resume: aedes-persistence-redis reads at most `maxSessionDelivery` + 1 queued messages in one
 *   LRANGE and never looks again while the client stays connected, so a longer queue stalled
 *   until the next reconnect. `queuedMessages` pages through the whole queue instead: the ids of
 *   what was queued at resume (LRANGE pages of 1,000) and the packets 100 at a time. Anything
 *   queued after that reaches the client live: aedes subscribed it before it reads the queue.
 * - the bound (`maxQueued`, `whenFull`): checked and applied by one Lua script on the client's
 *   list, so nodes enqueueing at the same moment cannot overshoot it.
 *
 * Layout, checked against aedes-persistence-redis 11.2.2 (asyncPersistence.js): the list
 * `outgoing:<encodeURIComponent(clientId)>` holds packet keys `packet:<brokerId>:<counter>`
 * (stored without the connection's key prefix); the packet is msgpack at that key, and
 * `<packet key>:offlineCount` counts the lists that still hold it. Re-check when upgrading.
 */
import { createRequire } from 'node:module'

import type { Redis } from 'ioredis'

import type { QueueBound, SharedQueue } from '../broker/session-store.js'

const require = createRequire(import.meta.url)
// The msgpack copy aedes-persistence-redis encodes with (its dependency, not ours).
const msgpack = createRequire(require.resolve('aedes-persistence-redis'))('msgpack-lite') as { decode(buf: Buffer): unknown }

const KEY_PAGE = 1000
const PACKET_PAGE = 100

export function outgoingKey(clientId: string): string {
  return `outgoing:${encodeURIComponent(clientId)}`
}

/** The ids queued for the client now, read in pages; a page that no longer lines up (an ack removed one before it) restarts the read. */
async function snapshot(conn: Redis, list: string): Promise<string[]> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const keys: string[] = []
    let consistent = true
    for (;;) {
      const from = keys.length
      // One id of overlap: the page must start where the previous one ended.
      const page = await conn.lrange(list, Math.max(0, from - 1), from + KEY_PAGE - 1)
      if (from > 0) {
        if (page[0] !== keys[from - 1]) {
          consistent = false
          break
        }
        page.shift()
      }
      keys.push(...page)
      if (page.length < KEY_PAGE) break
    }
    if (consistent) return keys
  }
  // The list keeps changing under us: take it in one read.
  return conn.lrange(list, 0, -1)
}

/** Every message queued for `clientId` when called, oldest first (see the module comment). */
export async function* queuedMessages(conn: Redis, clientId: string): AsyncGenerator<unknown> {
  const list = outgoingKey(clientId)
  const keys = await snapshot(conn, list)
  for (let i = 0; i < keys.length; i += PACKET_PAGE) {
    const page = keys.slice(i, i + PACKET_PAGE)
    const bodies = await conn.mgetBuffer(...page)
    for (let j = 0; j < page.length; j++) {
      const body = bodies[j]
      // Expired or already cleared: drop the dangling id, as aedes-persistence-redis does.
      if (!body) await conn.lrem(list, 0, page[j] as string)
      else yield msgpack.decode(body)
    }
  }
}

/**
 * KEYS[1] the client's list. ARGV: maxQueued, whenFull, the key prefix, the cluster's sessions and
 * nodes hashes (full names), the client id. A client connected to a live node is not bounded (its
 * queue drains as it acks). Otherwise drops down to the bound: the newest (drop_new) or the
 * oldest (drop_old), releasing the packet when no other queue holds it. Returns the dropped packets.
 */
const ENFORCE = `
local owner = redis.call('HGET', ARGV[4], ARGV[6])
if owner and redis.call('HEXISTS', ARGV[5], owner) == 1 then return {} end
local max = tonumber(ARGV[1])
local dropped = {}
while redis.call('LLEN', KEYS[1]) > max do
  local victim
  if ARGV[2] == 'drop_new' then victim = redis.call('RPOP', KEYS[1]) else victim = redis.call('LPOP', KEYS[1]) end
  if not victim then break end
  local pkt = ARGV[3] .. victim
  local body = redis.call('GET', pkt)
  if redis.call('DECR', pkt .. ':offlineCount') <= 0 then redis.call('DEL', pkt, pkt .. ':offlineCount') end
  table.insert(dropped, body or '')
end
return dropped
`

export interface ClusterPresence {
  /** Hash clientId → nodeId of the node holding the session. */
  sessions: string
  /** Hash of live nodes (nodeId → info). */
  nodes: string
}

/** The bound for queues in Redis (SessionStore calls it after queueing a message for a client not connected here). */
export function redisQueueBound(conn: Redis, keyPrefix: string, presence: ClusterPresence): SharedQueue {
  // A defined command gets a Buffer variant (packets are binary) and the key prefix on KEYS.
  conn.defineCommand('edgemqQueueBound', { numberOfKeys: 1, lua: ENFORCE })
  const run = (conn as unknown as { edgemqQueueBoundBuffer(...args: string[]): Promise<Buffer[]> }).edgemqQueueBoundBuffer.bind(conn)
  return {
    async enforce(clientId: string, bound: QueueBound): Promise<string[]> {
      const dropped = await run(outgoingKey(clientId), String(bound.maxQueued), bound.whenFull, keyPrefix, presence.sessions, presence.nodes, clientId)
      return dropped.map((body) => {
        try {
          return (msgpack.decode(body) as { topic?: string }).topic ?? ''
        } catch {
          return ''
        }
      })
    },
  }
}
