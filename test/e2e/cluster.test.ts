/**
 * Issue 8 "Must show": several `edgemq broker start` processes sharing one hub on a real
 * redis-server (private, on a free port). Each node has its own home (as on separate machines),
 * made with `hub init --store redis://…`. Failover and Redis restarts: cluster-failover.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { Redis } from 'ioredis'

import { publishAck, setEdgeHub } from '../helpers/bridge.js'
import { jsonOf, runCli } from '../helpers/cli.js'
import { HUB, useCluster, OPEN, type StatusJson } from '../helpers/cluster.js'
import { closed, collect, subscribeOk } from '../helpers/mqtt.js'
import { redisAvailable } from '../helpers/redis.js'
import { pidAlive } from '../../src/util/fs.js'

const DEVICES = ['sub', 'pub', 'ps', 'ps-pub', 'tk', 'meth', 'tw', 'local', 'rs-pub', 'late']

describe('cluster: broker nodes sharing one hub on Redis', { skip: redisAvailable() ? false : 'redis-server not installed' }, () => {
  const cluster = useCluster(DEVICES)
  const { homes, nodes, dev, start } = cluster

  it('every command of a joined home reads the hub from Redis', async () => {
    const r = await runCli(['device', 'list', '-o', 'tsv'], { home: homes[2] })
    assert.equal(r.code, 0, r.stderr)
    for (const d of DEVICES) assert.match(r.stdout, new RegExp(`^${d}\\t`, 'm'))
  })

  it('cross-node pub/sub: QoS0 and QoS1 published on B reach a subscriber on A; retained is served on A', async () => {
    const [a, b] = nodes
    const sub = await dev(a, 'sub')
    await subscribeOk(sub, ['x/#'], 1)
    const got = collect(sub, 2)
    const pub = await dev(b, 'pub')
    await publishAck(pub, 'x/q0', 'zero', 0)
    await publishAck(pub, 'x/q1', 'one', 1)
    const msgs = await got
    assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString(), m.qos]).sort(), [['x/q0', 'zero', 0], ['x/q1', 'one', 1]])
    await new Promise((res, rej) => pub.publish('ret/state', 'on', { qos: 1, retain: true }, (err) => (err ? rej(err) : res(undefined))))
    const late = await dev(a, 'late')
    const retained = collect(late, 1)
    await subscribeOk(late, ['ret/#'], 1)
    const [r] = await retained
    assert.equal(r.payload.toString(), 'on')
    assert.equal(r.retain, true)
  })

  it('a persistent session on node C resumes on node B after C is killed (kill -9): queued QoS1 delivered', async () => {
    const c = await start(2)
    nodes.push(c)
    const ps1 = await dev(c, 'ps', { clean: false })
    await subscribeOk(ps1, ['ps/#'], 1)
    await c.kill()
    nodes.splice(nodes.indexOf(c), 1)
    const pub = await dev(nodes[0], 'ps-pub')
    for (let i = 0; i < 20; i++) await publishAck(pub, `ps/${i}`, String(i))
    // aedes PUBACKs a QoS 1 message before it queues it for offline sessions: wait for the queue
    // (aedes-persistence-redis' list for `ps`) to hold all 20 before `ps` comes back.
    const redis = new Redis(cluster.redis.url)
    try {
      const deadline = Date.now() + 5000
      while ((await redis.llen(`edgemq:${HUB}:mqtt:outgoing:ps`)) < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    } finally {
      redis.disconnect()
    }
    let got: Promise<{ payload: Buffer }[]> | undefined
    let sessionPresent: boolean | undefined
    const ps2 = await dev(nodes[1], 'ps', {
      clean: false,
      beforeConnect: (cl) => {
        got = collect(cl, 20)
        cl.once('connect', (pk: { sessionPresent: boolean }) => (sessionPresent = pk.sessionPresent))
      },
    })
    assert.equal(sessionPresent, true, 'the session (its subscription) survived its node')
    const msgs = await (got as Promise<{ payload: Buffer }[]>)
    assert.deepEqual(msgs.map((m) => Number(m.payload.toString())).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i))
    await ps2.endAsync()
  })

  it('takeover across nodes: the same client id connecting on B closes its connection on A', async () => {
    const [a, b] = nodes
    const first = await dev(a, 'tk')
    const gone = closed(first, 10_000)
    const second = await dev(b, 'tk')
    await gone
    assert.equal(second.connected, true)
  })

  it('a direct method invoked through node A reaches the device connected to node B', async () => {
    const b = nodes[1]
    const device = await dev(b, 'meth')
    device.on('message', (topic, payload) => {
      const m = /^\$iothub\/methods\/POST\/([^/]+)\/\?\$rid=(.+)$/.exec(topic)
      if (m) device.publish(`$iothub/methods/res/200/?$rid=${m[2]}`, JSON.stringify({ method: m[1], echo: JSON.parse(payload.toString()) as unknown }))
    })
    await device.subscribeAsync('$iothub/methods/POST/#', { qos: 0 })
    // homes[0]'s broker.json names node A, so the CLI goes through A.
    const r = await runCli(['method', 'invoke', '-d', 'meth', '--method', 'reboot', '--payload', '{"delay":1}'], { home: homes[0] })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(jsonOf(r), { status: 200, payload: { method: 'reboot', echo: { delay: 1 } } })
    // A device online nowhere is still "not online" (404 → exit 4 style not-found), not a hang.
    const off = await runCli(['method', 'invoke', '-d', 'late', '--method', 'x', '--timeout', '5'], { home: homes[0] })
    assert.notEqual(off.code, 0)
    assert.match(off.stderr, /not online/)
  })

  it('a desired patch made through node A reaches the device on node B within 1 s', async () => {
    const [, b] = nodes
    const device = await dev(b, 'tw')
    await device.subscribeAsync('$iothub/twin/PATCH/properties/desired/#', { qos: 0 })
    const got = collect(device, 1)
    const r = await runCli(['twin', 'update', '--device', 'tw', '--desired', '{"fan":"on"}'], { home: homes[0] })
    // The write is committed before the CLI exits, so its exit bounds the change's time from above.
    const done = Date.now()
    assert.equal(r.code, 0, r.stderr)
    const [m] = await got
    assert.ok(Date.now() - done < 1000, `desired arrived ${Date.now() - done} ms after the update`)
    assert.equal((JSON.parse(m.payload.toString()) as { fan: string }).fan, 'on')
  })

  it('broker status lists every node and the clients on each', async () => {
    const [a, b] = nodes
    const r = await runCli(['broker', 'status'], { home: homes[2] })
    assert.equal(r.code, 0, r.stderr)
    const st = jsonOf<StatusJson>(r)
    // A node killed with kill -9 (node C above) stays listed until its heartbeat is NODE_TTL_MS old.
    const byPid = new Map(st.cluster.nodes.filter((n) => pidAlive(n.pid)).map((n) => [n.pid, n]))
    assert.deepEqual([...byPid.keys()].sort(), [a.pid, b.pid].sort())
    assert.ok(byPid.get(b.pid)?.clients.includes('meth'), JSON.stringify(st.cluster.nodes))
    assert.ok(byPid.get(a.pid)?.clients.includes('sub'), JSON.stringify(st.cluster.nodes))
    assert.equal(st.cluster.nodes.filter((n) => n.leader).length, 1)
  })

  it('policy hot-reload (`edgehub set`) is applied by every node within 1 s', async () => {
    const [a, b] = nodes
    const onA = await dev(a, 'local')
    const onB = await dev(b, 'rs-pub')
    const applied = Promise.all([a, b].map((n) => n.waitForLog(/applied new \$edgeHub configuration/, { since: n.mark(), timeoutMs: 10_000 })))
    // Only `pub` may publish now: `local` and `rs-pub` publishing anything are disconnected.
    const strict = [
      { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:subscribe'], resources: ['#'] }] },
      { identities: ['pub'], allow: [{ operations: ['mqtt:publish'], resources: ['#'] }] },
    ]
    await setEdgeHub(homes[0], { mqttBroker: { authorizations: strict } })
    const done = Date.now()
    await applied
    assert.ok(Date.now() - done < 1000, `applied ${Date.now() - done} ms after edgehub set exited`)
    for (const c of [onA, onB]) {
      const gone = closed(c, 5000)
      c.publish('x/denied', 'no', { qos: 1 })
      await gone
    }
    const back = Promise.all([a, b].map((n) => n.waitForLog(/applied new \$edgeHub configuration/, { since: n.mark(), timeoutMs: 10_000 })))
    await setEdgeHub(homes[0], { mqttBroker: { authorizations: OPEN } })
    await back
  })

})
