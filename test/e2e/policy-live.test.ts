/**
 * Issue 5 "Must show", live: the seed's three policy fixtures, loaded verbatim (the parse of `edgemq
 * edgehub set <fixture>`) into a running broker (no restart between them), the tightening one by
 * an `edgemq edgehub set` child process,
 * enforced on real MQTT connections — and hot reload: a tightened policy drops refused clients
 * within 1 s and removes subscriptions it no longer allows; an invalid document leaves the last
 * good policy in force and is reported in `$edgeHub`'s reported `lastDesiredStatus`.
 *
 * Every entry point of the CLI validates (`edgehub set`, `twin update`, `hub module-twin update`:
 * exit 2). The service REST API (control API / azure-iothub SDK `updateTwin`) stores a desired
 * patch as IoT Hub does, without knowing the `$edgeHub` schema — that is the path by which an
 * invalid document reaches the broker, and the broker must reject it itself.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import type { MqttClient } from 'mqtt'

import type { HubRecord } from '../../src/registry/types.js'
import { ControlClient } from '../../src/service/control-client.js'
import { runCli, tempHome } from '../helpers/cli.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { closed, collect, connackCode, connect } from '../helpers/mqtt.js'
import { SEED_FIXTURES as FIXTURES } from '../helpers/paths.js'

const ROGUE = join(FIXTURES, 'seed-policy-rogue-client.json')
const PUBSUB = join(FIXTURES, 'seed-policy-pubsub.json')
const DEFAULT = join(FIXTURES, 'seed-policy-default.json')
const IDENTITIES = ['rogue_client', 'sensor_1', 'sub_client', 'pub_client']
const APPLIED = /"msg":"applied new \$edgeHub configuration"/

/** MQTT.js rejects a SUBSCRIBE with any 0x80 in its SUBACK, carrying the packet: the granted list either way. */
async function granted(c: MqttClient, filters: Record<string, { qos: 0 | 1 }>): Promise<number[]> {
  return c.subscribeAsync(filters).then(
    (gs) => gs.map((g) => g.qos),
    (err: Error & { packet?: { granted?: number[] } }) => {
      if (!err.packet?.granted) throw err
      return err.packet.granted
    },
  )
}

describe('policy on a live broker: the seed fixtures, hot reload, invalid documents', () => {
  const home = tempHome()
  // The broker in this process, on disk; `edgemq` child processes change its policy where the CLI is what is tested.
  let broker: TestHub
  let hub: HubRecord
  const sas = new Map<string, string>()
  const open: MqttClient[] = []

  const port = () => broker.ports.mqtt
  async function client(id: string): Promise<MqttClient> {
    const c = await connect({ port: port(), clientId: id, password: sas.get(id) })
    open.push(c)
    return c
  }
  const code = (id: string) => connackCode({ port: port(), clientId: id, password: sas.get(id) })

  /** `edgehub set <file> [--replace]` through the library (`edgemq edgehub set` parses the file the same way), and the broker's "applied" log line for the version it stored. */
  async function edgehubSet([file, replace]: string[]): Promise<void> {
    const applied = broker.waitForLog(APPLIED, { since: broker.mark() })
    const { desiredVersion } = await broker.hub.setEdgeHub(readFileSync(file, 'utf8'), { replace: replace === '--replace' })
    assert.match(await applied, new RegExp(`"version":${desiredVersion}\\b`))
  }

  before(async () => {
    broker = await startTestHub({ inMemory: false, home, policy: 'none', ports: { mqtts: null, rest: null } })
    hub = broker.hub.context.hub
    for (const d of IDENTITIES) {
      await broker.hub.createDevice(d)
      sas.set(d, await broker.hub.sas(d, undefined, { durationSecs: 3600 }))
    }
  })

  after(async () => {
    for (const c of open) c.end(true)
    await broker?.stop()
  })

  it('no policy yet: nobody may connect (CONNACK 5), and the refusal says how to set one', async () => {
    assert.equal(await code('sensor_1'), 5)
    await broker.waitForLog(/"client":"sensor_1".*"code":5.*no authorization policy is set.*edgemq edgehub set/)
  })

  it('seed-policy-rogue-client.json: rogue_client refused (5), the others connect; sensor_1 publishes events/alerts and nothing else', async () => {
    await edgehubSet([ROGUE])
    assert.equal(await code('rogue_client'), 5)
    await broker.waitForLog(/"client":"rogue_client".*"code":5.*statement 0 \(rogue_client is not allowed to connect\) denies mqtt:connect/)
    assert.deepEqual(await Promise.all(['sensor_1', 'sub_client', 'pub_client'].map(code)), [0, 0, 0])

    const s = await client('sensor_1')
    // PUBACK = authorized (a denied publish closes the connection instead).
    await s.publishAsync('events/alerts', 'fire', { qos: 1 })
    await s.publishAsync('events/alerts', 'fire again', { qos: 1 })
    assert.equal(s.connected, true)
    const gone = closed(s)
    s.publish('events/other', 'nope', { qos: 0 })
    await gone
    await broker.waitForLog(/"client":"sensor_1".*"topic":"events\/other".*publish denied: disconnecting/)

    // "Nothing else": a level below, a wildcard-looking neighbour, another identity's topic.
    for (const topic of ['events/alerts/x', 'events', 'test_topic']) {
      const c = await client('sensor_1')
      const dropped = closed(c)
      c.publish(topic, 'nope', { qos: 1 })
      await dropped
    }
  })

  it('seed-policy-pubsub.json (trailing commas): sub_client ← test_topic ← pub_client; pub_client elsewhere is disconnected', async () => {
    await edgehubSet([PUBSUB])
    const sub = await client('sub_client')
    assert.deepEqual(await granted(sub, { test_topic: { qos: 1 } }), [1])
    const pub = await client('pub_client')
    const got = collect(sub, 2)
    await pub.publishAsync('test_topic', 'hello', { qos: 1 })
    await pub.publishAsync('test_topic', 'world', { qos: 0 })
    assert.deepEqual((await got).map((m) => [m.topic, m.payload.toString()]), [
      ['test_topic', 'hello'],
      ['test_topic', 'world'],
    ])

    const gone = closed(pub)
    pub.publish('test_topic/x', 'nope', { qos: 1 })
    await gone
    await broker.waitForLog(/"client":"pub_client".*"topic":"test_topic\/x".*publish denied/)
    // sub_client may not publish on its own topic either.
    const gone2 = closed(sub)
    sub.publish('test_topic', 'nope', { qos: 0 })
    await gone2
  })

  it('pubsub: sub_client subscribing # or test/# gets SUBACK 0x80 for that filter only; the allowed filter in the same SUBSCRIBE is granted', async () => {
    const sub = await client('sub_client')
    assert.deepEqual(await granted(sub, { '#': { qos: 0 }, test_topic: { qos: 1 } }), [0x80, 1])
    assert.deepEqual(await granted(sub, { test_topic: { qos: 0 }, 'test/#': { qos: 1 } }), [0, 0x80])
    assert.deepEqual(await granted(sub, { '+': { qos: 0 } }), [0x80])
    assert.equal(sub.connected, true, 'a denied SUBSCRIBE does not disconnect')
    await broker.waitForLog(/"client":"sub_client","filter":"#".*subscribe denied/)
    await broker.waitForLog(/"client":"sub_client","filter":"test\/#".*subscribe denied/)
    // The granted test_topic subscription works.
    const got = collect(sub, 1)
    const pub = await client('pub_client')
    await pub.publishAsync('test_topic', 'still here', { qos: 1 })
    assert.equal((await got)[0].payload.toString(), 'still here')
    sub.end(true)
    pub.end(true)
  })

  it('seed-policy-default.json: every identity connects, rogue_client included; nobody may publish', async () => {
    await edgehubSet([DEFAULT])
    assert.deepEqual(await Promise.all(IDENTITIES.map(code)), [0, 0, 0, 0])
    const s = await client('sensor_1')
    const gone = closed(s)
    s.publish('events/alerts', 'nope', { qos: 1 })
    await gone
  })

  it('hot reload: a tightened policy drops pub_client within 1 s and removes sub_client\'s test_topic subscription, no restart', async (t) => {
    await edgehubSet([PUBSUB, '--replace'])
    const sub = await client('sub_client')
    assert.deepEqual(await granted(sub, { test_topic: { qos: 1 } }), [1])
    const pub = await client('pub_client')
    const first = collect(sub, 1)
    await pub.publishAsync('test_topic', 'before', { qos: 1 })
    assert.equal((await first)[0].payload.toString(), 'before')

    const tightened = join(home, 'tightened.json')
    writeFileSync(
      tightened,
      JSON.stringify({
        schemaVersion: '1.2',
        mqttBroker: {
          authorizations: [
            { description: 'pub_client is no longer welcome', identities: ['pub_client'], deny: [{ operations: ['mqtt:connect'] }] },
            { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] },
            { identities: ['sub_client'], allow: [{ operations: ['mqtt:subscribe'], resources: ['other_topic'] }] },
            { identities: ['sensor_1'], allow: [{ operations: ['mqtt:publish'], resources: ['test_topic', 'other_topic'] }] },
          ],
        },
      }),
    )
    const pubGone = closed(pub, 30_000)
    const subsRemoved = broker.waitForLog(/"client":"sub_client","filters":\["test_topic"\].*no longer allows these subscriptions/, { since: broker.mark(), timeoutMs: 30_000 })
    const r = await runCli(['edgehub', 'set', tightened, '--replace'], { home })
    // The document is committed before the CLI exits: its exit bounds the change's time from above.
    const setExitedAt = Date.now()
    assert.equal(r.code, 0, r.stderr)
    const ms = (await pubGone) - setExitedAt
    assert.ok(ms < 1000, `pub_client dropped ${ms} ms after \`edgehub set\` exited`)
    t.diagnostic(`pub_client dropped ${ms} ms after \`edgehub set\` exited`)
    await subsRemoved
    await broker.waitForLog(/"client":"pub_client".*policy no longer allows this client to connect: disconnecting/)
    assert.equal(sub.connected, true, 'sub_client may still connect: it stays')
    assert.equal(broker.hub.broker.aedes.closed, false, 'no restart')

    // sub_client no longer receives test_topic: sensor_1 publishes test_topic, then other_topic
    // (now allowed to sub_client); the first message sub_client sees must be other_topic.
    assert.deepEqual(await granted(sub, { other_topic: { qos: 1 }, test_topic: { qos: 1 } }), [1, 0x80])
    const next = collect(sub, 1)
    const s = await client('sensor_1')
    await s.publishAsync('test_topic', 'not for sub_client', { qos: 1 })
    await s.publishAsync('other_topic', 'sentinel', { qos: 1 })
    const [m] = await next
    assert.deepEqual([m.topic, m.payload.toString()], ['other_topic', 'sentinel'])
    assert.equal(await code('pub_client'), 5)
  })

  it('an invalid document: every CLI entry point refuses it (exit 2, with its path); the broker keeps the policy', async () => {
    const bad = join(home, 'bad.json')
    writeFileSync(bad, JSON.stringify({ schemaVersion: '1.2', mqttBroker: { authorizations: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:pub'], resources: ['x'] }] }] } }))
    const path = /mqttBroker\.authorizations\[0\]\.allow\[0\]\.operations\[0\]: unknown operation "mqtt:pub"; supported: mqtt:connect, mqtt:publish, mqtt:subscribe/
    const [set, twin, az] = await Promise.all([
      runCli(['edgehub', 'set', bad, '--replace'], { home }),
      runCli(['twin', 'update', '--device', 'edge-gateway', '--module', '$edgeHub', '--desired', `@${bad}`], { home }),
      runCli(['hub', 'module-twin', 'update', '-d', 'edge-gateway', '-m', '$edgeHub', '--desired', `@${bad}`], { home }),
    ])
    for (const r of [set, twin, az]) {
      assert.equal(r.code, 2, r.stdout + r.stderr)
      assert.match(r.stderr, path)
    }
  })

  it('an invalid document sent through the service REST API: refused with 400 and its issues, nothing stored, the policy in force stays', async () => {
    const sub = await client('sub_client')
    assert.deepEqual(await granted(sub, { other_topic: { qos: 1 } }), [1])
    const edgeHubTwin = () => broker.hub.getTwin({ deviceId: hub.edgeDeviceId, moduleId: '$edgeHub' })
    const before = await edgeHubTwin()
    // Every write path validates as the CLI does (issue 14 item 5): REST cannot store what the broker would refuse.
    const control = ControlClient.connect(home, hub)
    const res = await control.request('PATCH', '/twins/edge-gateway/modules/$edgeHub', {
      properties: { desired: { mqttBroker: { authorizations: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect', 'mqtt:pub'] }] }] } } },
    })
    assert.equal(res.status, 400, JSON.stringify(res.body))
    assert.equal((res.body as { errorCode: string }).errorCode, 'ArgumentInvalid')
    assert.match(JSON.stringify((res.body as { issues: unknown }).issues), /mqttBroker\.authorizations\[0\]\.allow\[0\]\.operations\[1\]","message":"unknown operation \\"mqtt:pub\\"/)

    const show = await edgeHubTwin()
    assert.deepEqual(show.properties.desired, before.properties.desired, 'nothing was stored')
    assert.equal((show.properties.reported.lastDesiredStatus as { code?: number } | undefined)?.code, 200)

    // The policy in force still decides: pub_client refused, sensor_1 → sub_client on other_topic works.
    assert.equal(await code('pub_client'), 5)
    assert.equal(sub.connected, true)
    const got = collect(sub, 1)
    const s = await client('sensor_1')
    await s.publishAsync('other_topic', 'old policy', { qos: 1 })
    assert.equal((await got)[0].payload.toString(), 'old policy')

    // A good document afterwards is applied.
    await edgehubSet([PUBSUB, '--replace'])
    assert.equal(await code('pub_client'), 0)
  })

  it('hot reload, persistent session: a subscription the policy no longer allows queues nothing while the client is offline', async () => {
    const policy = (subscribe: string[]) => {
      const f = join(home, `persistent-${subscribe.length}.json`)
      writeFileSync(
        f,
        JSON.stringify({
          schemaVersion: '1.2',
          mqttBroker: {
            authorizations: [
              { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] },
              { identities: ['sub_client'], allow: [{ operations: ['mqtt:subscribe'], resources: subscribe }] },
              { identities: ['sensor_1'], allow: [{ operations: ['mqtt:publish'], resources: ['test_topic', 'other_topic'] }] },
            ],
          },
        }),
      )
      return f
    }
    await edgehubSet([policy(['test_topic', 'other_topic']), '--replace'])
    const sub = await connect({ port: port(), clientId: 'sub_client', password: sas.get('sub_client'), clean: false })
    open.push(sub)
    assert.deepEqual(await granted(sub, { test_topic: { qos: 1 }, other_topic: { qos: 1 } }), [1, 1])
    const removed = broker.waitForLog(/"client":"sub_client","filters":\["test_topic"\].*no longer allows these subscriptions: removed them/, { since: broker.mark() })
    await edgehubSet([policy(['other_topic']), '--replace'])
    await removed
    await sub.endAsync()

    const s = await client('sensor_1')
    await s.publishAsync('test_topic', 'must not be queued for sub_client', { qos: 1 })
    let first: Promise<{ topic: string; payload: Buffer }[]> | undefined
    const back = await connect({ port: port(), clientId: 'sub_client', password: sas.get('sub_client'), clean: false, beforeConnect: (c) => (first = collect(c, 1)) })
    open.push(back)
    await s.publishAsync('other_topic', 'sentinel', { qos: 1 })
    const [m] = await (first as Promise<{ topic: string; payload: Buffer }[]>)
    assert.deepEqual([m.topic, m.payload.toString()], ['other_topic', 'sentinel'])
  })
})
