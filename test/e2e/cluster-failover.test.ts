/**
 * Issue 8 "Must show", the hard parts: the bridge leader killed (another node bridges within
 * 10 s), Redis restarted under a QoS 1 stream (nothing acknowledged is lost), bad Redis input.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { publishAck, SEED_BRIDGE, setEdgeHub } from '../helpers/bridge.js'
import { type BrokerProc, startBroker } from '../helpers/broker.js'
import { cliOk as cli, jsonOf, runCli, tempHome } from '../helpers/cli.js'
import { useCluster, OPEN, type StatusJson } from '../helpers/cluster.js'
import { collect, connect, iothubUsername, subscribeOk } from '../helpers/mqtt.js'
import { freePort } from '../helpers/ports.js'
import { redisAvailable, type RedisProc, startRedis } from '../helpers/redis.js'

const DEVICES = ['local', 'rs-sub', 'rs-pub', 'probe']

describe('cluster: bridge failover and Redis restarts', { skip: redisAvailable() ? false : 'redis-server not installed' }, () => {
  const cluster = useCluster(DEVICES)
  const { homes, nodes, clients, dev, start } = cluster

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
    await subscribeOk(watcher, ['/remote/messages/#'], 1)

    const cs = (await cli(parentHome, ['connection-string', 'show', '--device', 'child-edge', '--gateway', 'localhost', '-o', 'tsv'])).trim()
    const connected = Promise.race(nodes.slice(0, 2).map((n) => n.waitForLog(/bridge connected to \$upstream/, { since: n.mark(), timeoutMs: 20_000 }).then(() => n)))
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

    const takeover = standby.waitForLog(/bridge connected to \$upstream/, { since: standby.mark(), timeoutMs: 15_000 })
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
    await subscribeOk(sub, ['rs/#'], 1)
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
    await cluster.redis.down()
    const during = Promise.all(Array.from({ length: 40 }, (_, i) => send(40 + i)))
    await new Promise((r) => setTimeout(r, 700))
    if (acked.length !== 40) console.log(a.logs().split('\n').filter((l) => /Redis|held|bus/.test(l)).join('\n'))
    assert.equal(acked.length, 40, 'no PUBACK while Redis is away: the message is not safe yet')
    await cluster.redis.up()
    await during
    for (let i = 80; i < N; i++) await send(i)
    const pubMs = Date.now() - t0
    const deadline = Date.now() + 15_000
    while (acked.some((k) => !seen.has(k)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const missing = acked.filter((k) => !seen.has(k))
    console.log(`# redis restart: ${N} QoS1 acked in ${pubMs} ms across the restart; received ${seen.size} unique, ${dupes} duplicates, ${missing.length} missing`)
    assert.deepEqual(missing, [], 'every acknowledged message arrived')
    await Promise.all([a, b].map((n) => n.waitForLog(/Redis connection restored/, { timeoutMs: 10_000 })))
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
