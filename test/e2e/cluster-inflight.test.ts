/**
 * The cluster bus' publishes in flight when Redis drops (src/cluster/mq.ts): node A has written
 * QoS 1 publishes to Redis and Redis has not answered them when the connection goes. They must
 * not be PUBACKed then, must not be sent again before the other nodes re-subscribed on the new
 * Redis, and must all reach a subscriber on node B once they did.
 *
 * How, without mocks: redis-server is SIGSTOPped, so node A's PUBLISH commands sit unread in
 * Redis' socket (read from /proc/net/tcp: they were sent, nobody answered); then node B is
 * SIGSTOPped too, Redis is SIGKILLed (node A's connections drop with the commands in flight) and
 * started again on the same port. Node A reconnects and announces itself; node B, still stopped,
 * cannot re-subscribe, so a publish node A sent now would be lost, and PUBACKed: the test checks
 * that none is. Then node B is continued: it re-subscribes, every message arrives, and every
 * PUBACK comes after that.
 *
 * What it catches: in-flight publishes that never settle (dropped by ioredis on reconnect without
 * going back to the held queue), and publishes sent before node B re-subscribed (ioredis resending
 * them on reconnect; a barrier that does not wait for node B). Note that with the publish
 * connection's maxRetriesPerRequest = 0, ioredis already rejects in-flight commands when the
 * socket closes, and the bus re-holds rejected publishes; so autoResendUnfulfilledCommands = false
 * and the move back to `held` in `down()` each guard alone, and removing only one of them passes.
 *
 * Twice: Redis restarted with its data (AOF), and restarted empty (the node registry gone too: node
 * A must still wait for node B, which it knew before the drop).
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'

import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'

import type { BrokerProc } from '../helpers/broker.js'
import { HUB, useCluster } from '../helpers/cluster.js'
import { nextMessage, subscribeOk } from '../helpers/mqtt.js'
import { redisAvailable } from '../helpers/redis.js'

const N = 10
/**
 * Large next to a PUBLISH command's own bytes (channel, msgpack fields: ~210), so that N × PAYLOAD
 * unread bytes prove all N commands reached Redis' socket: N-1 of them make less while
 * (N-1) × overhead < PAYLOAD (checked below). Small enough (N × ~4.3 KB) for one receive window.
 */
const PAYLOAD = 4096

/** Bytes Redis received on its connection with `clientPort` and has not read (Linux). */
function unreadByRedis(redisPort: number, clientPort: number): number {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 5) continue
    const port = (addr: string) => parseInt(addr.split(':')[1] as string, 16)
    if (port(f[1] as string) === redisPort && port(f[2] as string) === clientPort) return parseInt((f[4] as string).split(':')[1] as string, 16)
  }
  return -1
}

/** Polls `value` (nothing to wait on from outside: kernel buffers, Redis keys) until `ok` holds. */
async function until<T>(what: string, value: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await value()
    if (ok(v)) return v
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** How many times this Redis run executed `command` (INFO commandstats). */
async function calls(redis: Redis, command: string): Promise<number> {
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(await redis.info('commandstats'))?.[1] ?? 0)
}

/** A PINGREQ/PINGRESP round trip: the node handled everything it had read before, and wrote what it had to. */
function ping(c: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    const on = (p: { cmd: string }) => {
      if (p.cmd !== 'pingresp') return
      c.removeListener('packetreceive', on)
      resolve()
    }
    c.on('packetreceive', on)
    c.sendPing()
  })
}

const canRun = redisAvailable() ? (existsSync('/proc/net/tcp') ? false : 'needs /proc/net/tcp (Linux)') : 'redis-server not installed'

describe('cluster: QoS 1 publishes in flight when Redis drops', { skip: canRun }, () => {
  const cluster = useCluster(['aof-pub', 'aof-sub', 'aof-probe', 'empty-pub', 'empty-sub', 'empty-probe'])
  const { nodes, dev } = cluster

  async function inFlightAcrossRestart(name: 'aof' | 'empty'): Promise<void> {
    const [a, b] = nodes as [BrokerProc, BrokerProc]
    const redis = cluster.redis
    const t0 = Date.now()
    const sub = await dev(b, `${name}-sub`)
    await subscribeOk(sub, [`${name}/#`], 1)
    const pub = await dev(a, `${name}-pub`)
    const probe = await dev(a, `${name}-probe`)
    // The path works, and node B's subscription is in Redis.
    const warm = nextMessage(sub, (m) => m.topic === `${name}/warm-up`)
    await pub.publishAsync(`${name}/warm-up`, 'w', { qos: 1 })
    await warm

    // Node A's node id, and its publish connection as Redis sees it (the port on A's side).
    const admin = new Redis(redis.url)
    const nodesKey = `edgemq:${HUB}:nodes`
    let nodeA: string | undefined
    let pubPort: number
    try {
      nodeA = Object.values(await admin.hgetall(nodesKey))
        .map((doc) => JSON.parse(doc) as { nodeId: string; pid: number })
        .find((n) => n.pid === a.pid)?.nodeId
      assert.ok(nodeA, 'node A in the node registry')
      // A heartbeat of node A since this test began (its clients' connects bring one on) listed
      // node B: the barrier after a Redis that forgot node B relies on that.
      const heartbeatAt = async () => (JSON.parse((await admin.hget(nodesKey, nodeA as string)) ?? '{}') as { heartbeatAt?: string }).heartbeatAt
      await until("node A's heartbeat since the test began", heartbeatAt, (at) => !!at && Date.parse(at) > t0)
      const clients = (await admin.client('LIST')) as string
      const pubLine = clients.split('\n').find((l) => l.includes(` name=edgemq-mq-pub-${a.pid} `))
      assert.ok(pubLine, `node A's publish connection in CLIENT LIST:\n${clients}`)
      pubPort = Number(/ addr=[\d.]+:(\d+) /.exec(pubLine)?.[1])
    } finally {
      admin.disconnect()
    }

    const topics = Array.from({ length: N }, (_, i) => `${name}/${String(i).padStart(2, '0')}`)
    const received = new Map<string, number>()
    sub.on('message', (topic) => {
      if (topics.includes(topic)) received.set(topic, (received.get(topic) ?? 0) + 1)
    })
    const ackedAt: number[] = []
    let pausedB = false
    const since = a.mark()
    try {
      redis.pause()
      const tPause = Date.now()
      const acks = Promise.all(
        topics.map(
          (t) =>
            new Promise<void>((resolve, reject) =>
              pub.publish(t, Buffer.alloc(PAYLOAD, t), { qos: 1 }, (err) => {
                if (err) return reject(err)
                ackedAt.push(Date.now())
                resolve()
              }),
            ),
        ),
      )
      // Sent by node A, in Redis' socket, unanswered.
      const unread = await until('bytes of node A publishes unread by the stopped Redis', () => unreadByRedis(redis.port, pubPort), (v) => v >= N * PAYLOAD)
      assert.ok((N - 1) * (unread / N - PAYLOAD) < PAYLOAD, `a PUBLISH of ${unread / N} bytes: N × PAYLOAD unread does not prove all N arrived`)
      await ping(probe)
      assert.equal(ackedAt.length, 0, 'no PUBACK while Redis holds the publishes unanswered')

      // Node B cannot re-subscribe until it is continued; Redis crashes with the publishes in flight.
      b.proc.kill('SIGSTOP')
      pausedB = true
      await redis.crash()
      const tCrash = Date.now()
      if (name === 'empty') rmSync(join(redis.dir, 'appendonlydir'), { recursive: true })
      await redis.up()
      const tUp = Date.now()
      // Node A is back on the new Redis and announced its re-subscription (node B cannot have), and
      // it keeps waiting for node B: its barrier polls the marks (HMGET, used by nothing else).
      const check = new Redis(redis.url)
      try {
        const runId = /run_id:(\w+)/.exec(await check.info('server'))?.[1]
        const marks = await until('mq-ready marks of the new Redis run', () => check.hgetall(`edgemq:${HUB}:mq-ready`), (m) => m[nodeA] === runId)
        assert.deepEqual(
          Object.keys(marks).filter((id) => marks[id] === runId),
          [nodeA],
          'only node A re-subscribed',
        )
        await until('barrier polls (HMGET) by node A, still waiting for node B', () => calls(check, 'hmget'), (n) => n >= 3)
        // Its publish connection sends nothing but PUBLISH: its last command is not one.
        const pubNow = ((await check.client('LIST')) as string).split('\n').find((l) => l.includes(` name=edgemq-mq-pub-${a.pid} `))
        assert.ok(pubNow, 'node A publish connection on the new Redis')
        assert.doesNotMatch(pubNow, / cmd=publish /, 'no PUBLISH from node A before node B re-subscribed: it would be lost')
      } finally {
        check.disconnect()
      }
      await ping(probe)
      assert.equal(ackedAt.length, 0, 'no PUBACK before node B re-subscribed')

      const tCont = Date.now()
      b.proc.kill('SIGCONT')
      pausedB = false
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`PUBACKs: ${ackedAt.length} of ${N}`)), 10_000)))
      await Promise.race([acks, timeout]).finally(() => clearTimeout(timer))
      await until('messages at the subscriber on node B', () => received.size, (n) => n === N)
      const dupes = [...received.values()].reduce((s, n) => s + n - 1, 0)
      console.log(
        `# ${name}: ${unread} bytes of ${N} publishes unread by the stopped Redis; Redis down ${tUp - tCrash} ms; PUBACKs ` +
          `${Math.min(...ackedAt) - tCont}..${Math.max(...ackedAt) - tCont} ms after node B was continued; ${received.size} received, ${dupes} duplicates; ${Date.now() - tPause} ms from the pause`,
      )
      assert.deepEqual([...received.keys()].sort(), topics)
      assert.ok(
        ackedAt.every((t) => t >= tCont),
        'every PUBACK after node B was continued',
      )
      // They left node A through the held queue, behind the re-subscribe barrier.
      const opened = JSON.parse(await a.waitForLog(/cluster bus open: sending held publishes/, { since })) as { held: number }
      assert.equal(opened.held, N)
    } finally {
      if (pausedB) b.proc.kill('SIGCONT')
      redis.resume()
    }
  }

  it('Redis restarted with its data: in-flight publishes are not PUBACKed, not sent before node B re-subscribed, then all delivered', () =>
    inFlightAcrossRestart('aof'))

  // Last: the hub's registry is gone afterwards.
  it('Redis restarted empty: node A still waits for node B (no registry entry yet) before sending them', () => inFlightAcrossRestart('empty'))
})
