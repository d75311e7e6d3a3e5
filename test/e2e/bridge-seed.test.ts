/**
 * Issue 7 "Must show" (two real broker processes, separate homes, free ports):
 *  - the seed's bridge sample verbatim: parent `alerts/1` → child `alerts/1`; child
 *    `/local/telemetry/t1` → parent `/remote/messages/t1`;
 *  - a `both` setting works both ways and nothing echoes (exactly one delivery each side);
 *  - telemetry routed `FROM /messages/* INTO $upstream` shows in the parent's `monitor` as the device's;
 *  - bridge settings added/removed with `edgehub set` apply live, no restart.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'

import type { MqttClient } from 'mqtt'

import { bridgeStatus, deviceClient, makePair, type Pair, publishAck, reportedBridges, SEED_BRIDGE, setEdgeHub } from '../helpers/bridge.js'
import { type BrokerProc, startBroker } from '../helpers/broker.js'
import { BIN, cliOk as cli } from '../helpers/cli.js'
import { collect, type Received, subscribeOk } from '../helpers/mqtt.js'

/** Every message a client receives, in order, from now on. */
function record(c: MqttClient): Received[] {
  const got: Received[] = []
  c.on('message', (topic, payload, packet) => got.push({ topic, payload, qos: packet.qos, retain: packet.retain }))
  return got
}
const count = (got: Received[], topic: string, payload: string) => got.filter((m) => m.topic === topic && m.payload.toString() === payload).length

describe('bridge: the seed sample between two brokers', () => {
  let pair: Pair
  let parent: BrokerProc
  let child: BrokerProc
  let watcher: MqttClient // on the parent
  let local: MqttClient // on the child
  let watcherGot: Received[]
  let localGot: Received[]

  before(async () => {
    pair = await makePair()
    parent = await startBroker(pair.parent.home)
    await pair.linkChild(parent)
    child = await startBroker(pair.child.home)
    await child.waitForLog(/alerts\/#.*bridge subscribed on \$upstream/)
    ;[watcher, local] = await Promise.all([deviceClient(pair.parent, parent, 'watcher'), deviceClient(pair.child, child, 'local')])
    watcherGot = record(watcher)
    localGot = record(local)
    await Promise.all([subscribeOk(watcher, ['/remote/messages/#', 'sync/#', 'live/#'], 1), subscribeOk(local, ['alerts/#', 'sync/#', 'news/#'], 1)])
  })

  after(async () => {
    await Promise.all([watcher?.endAsync(true), local?.endAsync(true)])
    await Promise.all([child?.stop(), parent?.stop()])
  })

  it('reports the bridge connected in `broker status` and the $edgeHub reported properties', async () => {
    const [st] = await bridgeStatus(pair.child.home)
    assert.equal(st.endpoint, '$upstream')
    assert.equal(st.state, 'connected')
    assert.equal(st.parent, `localhost:${parent.ports.mqtts}`)
    assert.equal(st.lastError, undefined)
    // The child edge device shows as a client of the parent.
    const p = JSON.parse(await cli(pair.parent.home, ['broker', 'status'])) as { clients: { clientId: string; auth: string }[] }
    assert.ok(p.clients.some((c) => c.clientId === 'child-edge' && c.auth === 'sas'), JSON.stringify(p.clients))
    // Reported properties are written at most once a second after a change: poll `twin show`.
    const reported = await reportedBridges(pair.child.home, (b) => b[0]?.state === 'connected')
    assert.equal(reported[0].endpoint, '$upstream')
  })

  it('parent `alerts/1` arrives on the child as `alerts/1` (direction in)', async () => {
    const got = collect(local, 1, { filter: (m) => m.topic.startsWith('alerts/') })
    await publishAck(watcher, 'alerts/1', 'fire')
    const [m] = await got
    assert.equal(m.topic, 'alerts/1')
    assert.equal(m.payload.toString(), 'fire')
    assert.equal(m.qos, 1)
  })

  it('child `/local/telemetry/t1` arrives on the parent as `/remote/messages/t1` (direction out, empty topic = all below inPrefix)', async () => {
    const got = collect(watcher, 2, { filter: (m) => m.topic.startsWith('/remote/messages') })
    await publishAck(local, '/local/telemetry/t1', 'hello')
    await publishAck(local, '/local/telemetry/a/b/c', 'deep')
    const ms = await got
    assert.deepEqual(
      ms.map((m) => [m.topic, m.payload.toString(), m.qos]),
      [
        ['/remote/messages/t1', 'hello', 1],
        ['/remote/messages/a/b/c', 'deep', 1],
      ],
    )
  })

  it('a `both` setting (added live) works both ways, and nothing echoes back: one delivery per side', async () => {
    const configured = child.waitForLog(/sync\/#.*sync\/#.*bridge configured/, { since: child.mark() })
    const subscribed = child.waitForLog(/sync\/#.*bridge subscribed on \$upstream/, { since: child.mark() })
    await setEdgeHub(pair.child.home, {
      mqttBroker: {
        bridges: [{ endpoint: '$upstream', settings: [...seedSettings(), { direction: 'both', topic: 'sync/#' }] }],
      },
    })
    await configured
    await subscribed

    // child → parent; the parent then offers it back to child-edge's `sync/#` subscription.
    const atParent = collect(watcher, 1, { filter: (m) => m.topic === 'sync/from-child' })
    await publishAck(local, 'sync/from-child', 'c1')
    await atParent
    // A marker sent parent → child after it: when it arrives, any echo of `sync/from-child`
    // (same connection, earlier) would have arrived too.
    const marker1 = collect(local, 1, { filter: (m) => m.topic === 'sync/marker-p' })
    await publishAck(watcher, 'sync/marker-p', 'm')
    await marker1
    assert.equal(count(localGot, 'sync/from-child', 'c1'), 1, 'the child saw its own message exactly once (no echo from the parent)')
    assert.equal(count(watcherGot, 'sync/from-child', 'c1'), 1, 'the parent got it exactly once')

    // parent → child; the child must not forward it back up.
    const atChild = collect(local, 1, { filter: (m) => m.topic === 'sync/from-parent' })
    await publishAck(watcher, 'sync/from-parent', 'p1')
    await atChild
    const marker2 = collect(watcher, 1, { filter: (m) => m.topic === 'sync/marker-c' })
    await publishAck(local, 'sync/marker-c', 'm')
    await marker2
    assert.equal(count(watcherGot, 'sync/from-parent', 'p1'), 1, 'the parent saw its own message exactly once (not bounced back by the child)')
    assert.equal(count(localGot, 'sync/from-parent', 'p1'), 1, 'the child got it exactly once')
    // The markers crossed once too.
    assert.equal(count(localGot, 'sync/marker-p', 'm'), 1)
    assert.equal(count(watcherGot, 'sync/marker-c', 'm'), 1)
  })

  it('telemetry routed FROM /messages/* INTO $upstream shows in the parent\'s `monitor` as the child device\'s', async () => {
    const sensor = await deviceClient(pair.child, child, 'sensor')
    try {
      const mon = spawn(process.execPath, [BIN, 'monitor', '--device', 'sensor', '--props', '--message-count', '1', '--timeout', '60'], {
        env: { ...process.env, EDGEMQ_HOME: pair.parent.home, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      mon.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
      const line = new Promise<string>((resolve, reject) => {
        createInterface({ input: mon.stdout }).once('line', resolve)
        mon.once('exit', (code) => reject(new Error(`monitor exited ${code} without an event:\n${stderr}`)))
      })
      // `monitor` gives no readiness signal; send until it has seen one (each send is a real
      // telemetry message; only the first after it subscribed is printed).
      let seen = false
      void line.then(() => (seen = true), () => (seen = true))
      const deadline = Date.now() + 40_000
      for (let i = 0; Date.now() < deadline && !seen; i++) {
        await publishAck(sensor, 'devices/sensor/messages/events/kind=probe', JSON.stringify({ temperature: 21.5, i }))
        await Promise.race([line, new Promise((r) => setTimeout(r, 100))]).catch(() => undefined)
      }
      const ev = JSON.parse(await line) as { event: { origin: string; module: string; payload: { temperature: number }; properties: { application: Record<string, string> } } }
      assert.equal(ev.event.origin, 'sensor')
      assert.equal(ev.event.module, '')
      assert.equal(ev.event.payload.temperature, 21.5)
      assert.equal(ev.event.properties.application.kind, 'probe')
    } finally {
      await sensor.endAsync(true)
    }
  })

  it('bridge settings added and removed with `edgehub set` apply live: new topics flow, old ones stop', async () => {
    // Add: out `live/#`, in `news/#`.
    let configured = child.waitForLog(/live\/#.*bridge configured/, { since: child.mark() })
    const subscribed = child.waitForLog(/news\/#.*bridge subscribed on \$upstream/, { since: child.mark() })
    await setEdgeHub(pair.child.home, {
      mqttBroker: {
        bridges: [{ endpoint: '$upstream', settings: [...seedSettings(), { direction: 'out', topic: 'live/#' }, { direction: 'in', topic: 'news/#' }] }],
      },
    })
    await configured
    await subscribed
    const up = collect(watcher, 1, { filter: (m) => m.topic === 'live/1' })
    await publishAck(local, 'live/1', 'on')
    assert.equal((await up)[0].payload.toString(), 'on')
    const down = collect(local, 1, { filter: (m) => m.topic === 'news/1' })
    await publishAck(watcher, 'news/1', 'extra')
    assert.equal((await down)[0].payload.toString(), 'extra')

    // Remove both: back to the seed sample.
    configured = child.waitForLog(/bridge configured/, { since: child.mark() })
    await cli(pair.child.home, ['edgehub', 'set', SEED_BRIDGE])
    const line = await configured
    assert.doesNotMatch(line, /live\/#|news\/#/)
    await publishAck(local, 'live/2', 'off')
    await publishAck(watcher, 'news/2', 'off')
    // Markers on the rules that stay: they travel behind the removed topics' messages, so
    // when they arrive the removed ones would have arrived.
    const m1 = collect(watcher, 1, { filter: (m) => m.topic === '/remote/messages/after-remove' })
    await publishAck(local, '/local/telemetry/after-remove', 'x')
    await m1
    const m2 = collect(local, 1, { filter: (m) => m.topic === 'alerts/after-remove' })
    await publishAck(watcher, 'alerts/after-remove', 'x')
    await m2
    assert.equal(count(watcherGot, 'live/2', 'off'), 0, 'live/2 crossed after its out rule was removed')
    assert.equal(count(localGot, 'news/2', 'off'), 0, 'news/2 crossed after its in rule was removed')
    // Still the same broker processes.
    assert.equal(child.proc.exitCode, null)
    assert.equal(parent.proc.exitCode, null)
  })
})

/** The seed sample's settings, for documents that extend it. */
function seedSettings(): unknown[] {
  return [
    { direction: 'in', topic: 'alerts/#' },
    { direction: 'out', topic: '', inPrefix: '/local/telemetry', outPrefix: '/remote/messages' },
  ]
}
