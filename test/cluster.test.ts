/**
 * Issue 8 "Must show": several `edgemq broker start` processes sharing one hub on a real
 * redis-server (private, on a free port, appendonly yes + appendfsync always). Each node has its
 * own home (as on separate machines), made with `hub init --store redis://…`.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import type { MqttClient } from 'mqtt'

import { openHub } from '../src/config/home.js'
import { buildSasToken, deviceResource } from '../src/sas/index.js'
import { startBroker, type BrokerProc } from './helpers/broker.js'
import { cli, freePort, publishAck, SEED_BRIDGE, setEdgeHub, subscribeAck } from './helpers/bridge.js'
import { jsonOf, runCli, tempHome } from './helpers/cli.js'
import { closed, collect, connect, iothubUsername, nextLogLine, type ConnectOptions } from './helpers/mqtt.js'
import { redisAvailable, startRedis, type RedisProc } from './helpers/redis.js'

const HUB = 'clu'
const HOST = `${HUB}.azure-devices.net`
const OPEN = [
  { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] },
]
const DEVICES = ['sub', 'pub', 'ps', 'ps-pub', 'tk', 'meth', 'tw', 'local', 'rs-sub', 'rs-pub', 'late', 'probe']

interface StatusJson {
  cluster: { bridgeLeader: string | null; nodes: { node: string; pid: number; leader: boolean; clients: string[] }[] }
}

describe('cluster: broker nodes sharing one hub on Redis', { skip: redisAvailable() ? false : 'redis-server not installed' }, () => {
  let redis: RedisProc
  const homes = [tempHome('edgemq-node-a-'), tempHome('edgemq-node-b-'), tempHome('edgemq-node-c-')]
  const nodes: BrokerProc[] = []
  const clients: MqttClient[] = []
  const keys = new Map<string, string>()

  const sas = (deviceId: string) => buildSasToken({ resource: deviceResource(HOST, deviceId), key: keys.get(deviceId) as string, durationSecs: 3600 })
  const dev = async (node: BrokerProc, deviceId: string, o: Partial<ConnectOptions> = {}) => {
    const c = await connect({ port: node.ports.mqtt, clientId: deviceId, password: sas(deviceId), username: iothubUsername(deviceId, HOST), ...o })
    clients.push(c)
    return c
  }
  const start = async (i: number, args: string[] = []) => {
    const n = await startBroker(homes[i], ['--no-tls', ...args])
    await n.waitForLog(/joined the cluster/)
    return n
  }

  before(async () => {
    redis = await startRedis({ appendOnly: true })
    await cli(homes[0], ['hub', 'init', '--name', HUB, '--store', redis.url])
    // The other "machines" join the same hub: only a pointer file in their homes.
    const joined = await Promise.all(homes.slice(1).map((h) => cli(h, ['hub', 'init', '--name', HUB, '--store', redis.url])))
    for (const j of joined) assert.equal((JSON.parse(j) as { joined: boolean }).joined, true)
    // Devices through the library (same Store as the CLI uses with this home), to save CLI start-ups.
    const ctx = await openHub({ home: homes[1], createDefault: false })
    try {
      assert.equal(ctx.store.kind, 'redis')
      for (const d of DEVICES) keys.set(d, (await ctx.registry.createDevice({ deviceId: d })).primaryKey as string)
    } finally {
      await ctx.close()
    }
    await setEdgeHub(homes[0], { mqttBroker: { authorizations: OPEN } })
    nodes.push(await start(0), await start(1))
  })

  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)))
    await Promise.all(nodes.map((n) => n.stop()))
    await redis?.stop()
  })

  it('every command of a joined home reads the hub from Redis', async () => {
    const r = await runCli(['device', 'list', '-o', 'tsv'], { home: homes[2] })
    assert.equal(r.code, 0, r.stderr)
    for (const d of DEVICES) assert.match(r.stdout, new RegExp(`^${d}\\t`, 'm'))
  })

  it('cross-node pub/sub: QoS0 and QoS1 published on B reach a subscriber on A; retained is served on A', async () => {
    const [a, b] = nodes
    const sub = await dev(a, 'sub')
    await subscribeAck(sub, ['x/#'])
    const got = collect(sub, 2)
    const pub = await dev(b, 'pub')
    await publishAck(pub, 'x/q0', 'zero', 0)
    await publishAck(pub, 'x/q1', 'one', 1)
    const msgs = await got
    assert.deepEqual(msgs.map((m) => [m.topic, m.payload.toString(), m.qos]).sort(), [['x/q0', 'zero', 0], ['x/q1', 'one', 1]])
    await new Promise((res, rej) => pub.publish('ret/state', 'on', { qos: 1, retain: true }, (err) => (err ? rej(err) : res(undefined))))
    const late = await dev(a, 'late')
    const retained = collect(late, 1)
    await subscribeAck(late, ['ret/#'])
    const [r] = await retained
    assert.equal(r.payload.toString(), 'on')
    assert.equal(r.retain, true)
  })

  it('a persistent session on node C resumes on node B after C is killed (kill -9): queued QoS1 delivered', async () => {
    const c = await start(2)
    nodes.push(c)
    const ps1 = await dev(c, 'ps', { clean: false })
    await subscribeAck(ps1, ['ps/#'])
    await c.kill()
    nodes.splice(nodes.indexOf(c), 1)
    const pub = await dev(nodes[0], 'ps-pub')
    for (let i = 0; i < 20; i++) await publishAck(pub, `ps/${i}`, String(i))
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
    const [a, b] = nodes
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
    await a.waitForLog(/"client":"meth"/).catch(() => undefined)
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
    const byPid = new Map(st.cluster.nodes.map((n) => [n.pid, n]))
    assert.deepEqual([...byPid.keys()].sort(), [a.pid, b.pid].sort())
    assert.ok(byPid.get(b.pid)?.clients.includes('meth'), JSON.stringify(st.cluster.nodes))
    assert.ok(byPid.get(a.pid)?.clients.includes('sub'), JSON.stringify(st.cluster.nodes))
    assert.equal(st.cluster.nodes.filter((n) => n.leader).length, 1)
  })

  it('policy hot-reload (`edgehub set`) is applied by every node within 1 s', async () => {
    const [a, b] = nodes
    const onA = await dev(a, 'local')
    const onB = await dev(b, 'rs-pub')
    const applied = Promise.all([a, b].map((n) => nextLogLine(n, /applied new \$edgeHub configuration/, 10_000)))
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
    const back = Promise.all([a, b].map((n) => nextLogLine(n, /applied new \$edgeHub configuration/, 10_000)))
    await setEdgeHub(homes[0], { mqttBroker: { authorizations: OPEN } })
    await back
  })

  it('one bridge per hub: only the leader connects to $upstream; kill -9 the leader → another node bridges within 10 s', async () => {
    // The parent: a plain single edgemq broker (embedded hub), with the cluster's edge identity.
    const parentHome = tempHome('edgemq-parent-')
    await cli(parentHome, ['hub', 'init', '--name', 'parenthub'])
    await cli(parentHome, ['device', 'create', 'child-edge', '--edge'])
    await cli(parentHome, ['device', 'create', 'watcher'])
    await setEdgeHub(parentHome, { mqttBroker: { authorizations: OPEN } })
    const parent = await startBroker(parentHome)
    nodes.push(parent)
    const watcherKey = (await cli(parentHome, ['sas', '--device', 'watcher', '--raw'])).trim()
    const watcher = await connect({ port: parent.ports.mqtt, clientId: 'watcher', password: watcherKey, username: iothubUsername('watcher', 'parenthub.azure-devices.net') })
    clients.push(watcher)
    await subscribeAck(watcher, ['/remote/messages/#'])

    const cs = (await cli(parentHome, ['connection-string', 'show', '--device', 'child-edge', '--gateway', 'localhost', '-o', 'tsv'])).trim()
    const connected = Promise.race(nodes.slice(0, 2).map((n) => nextLogLine(n, /bridge connected to \$upstream/, 20_000).then(() => n)))
    await cli(homes[0], ['hub', 'set-upstream', '--connection-string', cs, '--port', String(parent.ports.mqtts), '--ca', parent.caFile])
    await cli(homes[0], ['edgehub', 'set', SEED_BRIDGE])
    const leader = await connected
    const st = jsonOf<StatusJson>(await runCli(['broker', 'status'], { home: homes[1] }))
    assert.equal(st.cluster.nodes.filter((n) => n.leader).map((n) => n.pid).join(), String(leader.pid), 'exactly one leader, the one that bridged')
    const standby = nodes.slice(0, 2).find((n) => n !== leader) as BrokerProc
    assert.ok(!/bridge connected to \$upstream/.test(standby.logs()), 'the standby node does not bridge')

    // Through the leader first: a device on the standby node publishes, the leader forwards.
    const local = await dev(standby, 'local')
    const first = collect(watcher, 1)
    await publishAck(local, '/local/telemetry/before', 'b')
    assert.equal((await first)[0].topic, '/remote/messages/before')

    const takeover = nextLogLine(standby, /bridge connected to \$upstream/, 15_000)
    const t0 = Date.now()
    await leader.kill()
    nodes.splice(nodes.indexOf(leader), 1)
    await takeover
    const ms = Date.now() - t0
    console.log(`# bridge failover: standby connected to the parent ${ms} ms after the leader was killed`)
    assert.ok(ms < 10_000, `took ${ms} ms`)
    const after = collect(watcher, 1, { filter: (m) => m.topic === '/remote/messages/after' })
    await publishAck(local, '/local/telemetry/after', 'a')
    await after
    // Back to two cluster nodes for what follows.
    nodes.splice(nodes.indexOf(parent), 1)
    await parent.stop()
    await cli(homes[0], ['hub', 'set-upstream', '--clear'])
    nodes.unshift(await start(2))
  })

  it('Redis restarted mid-stream: nodes reconnect and keep serving; no acknowledged QoS1 message is lost', async () => {
    const [a, b] = nodes
    const sub = await dev(b, 'rs-sub', { clean: false })
    await subscribeAck(sub, ['rs/#'])
    const seen = new Set<string>()
    let dupes = 0
    sub.on('message', (_t, p) => {
      const k = p.toString()
      if (seen.has(k)) dupes++
      seen.add(k)
    })
    const pub = await dev(a, 'rs-pub')
    const N = 150
    const acked: string[] = []
    const send = async (i: number) => {
      await publishAck(pub, `rs/${i}`, String(i))
      acked.push(String(i))
    }
    const t0 = Date.now()
    for (let i = 0; i < 40; i++) await send(i)
    // Redis goes away (SIGTERM: it finishes its AOF) while 40 more QoS1 publishes are in flight.
    await redis.down()
    const during = Promise.all(Array.from({ length: 40 }, (_, i) => send(40 + i)))
    await new Promise((r) => setTimeout(r, 700))
    if (acked.length !== 40) console.log(a.logs().split('\n').filter((l) => /Redis|held|bus/.test(l)).join('\n'))
    assert.equal(acked.length, 40, 'no PUBACK while Redis is away: the message is not safe yet')
    await redis.up()
    await during
    for (let i = 80; i < N; i++) await send(i)
    const pubMs = Date.now() - t0
    const deadline = Date.now() + 15_000
    while (acked.some((k) => !seen.has(k)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const missing = acked.filter((k) => !seen.has(k))
    console.log(`# redis restart: ${N} QoS1 acked in ${pubMs} ms across the restart; received ${seen.size} unique, ${dupes} duplicates, ${missing.length} missing`)
    assert.deepEqual(missing, [], 'every acknowledged message arrived')
    await Promise.all([a, b].map((n) => n.waitForLog(/Redis connection restored/, 10_000)))
    // Still serving: new connections on both nodes, and a fresh round trip.
    const probe = await dev(a, 'probe')
    await probe.endAsync()
    const probeB = await dev(b, 'probe')
    const again = collect(sub, 1, { filter: (m) => m.topic === 'rs/again' })
    await publishAck(probeB, 'rs/again', 'x')
    await again
  })
})

describe('cluster: bad Redis input fails fast and clearly', { skip: redisAvailable() ? false : 'redis-server not installed' }, () => {
  let secured: RedisProc
  before(async () => {
    secured = await startRedis({ password: 'right-pass' })
  })
  after(async () => {
    await secured?.stop()
  })

  it('unreachable Redis URL → clear error within a few seconds, home untouched', async () => {
    const home = tempHome()
    const port = await freePort()
    const t0 = Date.now()
    const r = await runCli(['broker', 'start', '--cluster', `redis://127.0.0.1:${port}/0`, '--port', '0', '--no-tls'], { home, timeoutMs: 20_000 })
    const ms = Date.now() - t0
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, new RegExp(`error: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED`))
    assert.match(r.stderr, /hint: /)
    assert.ok(ms < 8000, `took ${ms} ms`)
    const again = await runCli(['hub', 'init', '--store', `redis://127.0.0.1:${port}/0`], { home, timeoutMs: 20_000 })
    assert.notEqual(again.code, 0)
    assert.match(again.stderr, /cannot reach Redis/)
  })

  it('wrong password → clear error (and the password is not echoed)', async () => {
    const home = tempHome()
    const bad = secured.url.replace('right-pass', 'wrong-pass')
    const r = await runCli(['hub', 'init', '--store', bad], { home, timeoutMs: 20_000 })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /error: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 refused the credentials: WRONGPASS/)
    assert.doesNotMatch(r.stderr, /wrong-pass/)
    const s = await runCli(['broker', 'start', '--cluster', bad, '--port', '0', '--no-tls'], { home, timeoutMs: 20_000 })
    assert.notEqual(s.code, 0)
    assert.match(s.stderr, /refused the credentials/)
    const none = await runCli(['hub', 'init', '--store', secured.url.replace(':right-pass@', '')], { home, timeoutMs: 20_000 })
    assert.match(none.stderr, /requires a password/)
  })
})
