/**
 * Issue 6, isolation (PROTOCOL.md §3–§4): every client subscribes to the same
 * `$iothub/twin/res/#` and `$iothub/methods/POST/#`, yet client A never receives B's twin
 * responses, desired pushes, method calls or C2D — even while both use the same request ids at
 * the same time. Filters that would reach another identity's IoT Hub topics get SUBACK 0x80.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { startTestHub, type TestHub } from '../helpers/hub.js'
import { cliJson, runCli, tempHome } from '../helpers/cli.js'
import { nextMessage, subscribeGranted, subscribeOk } from '../helpers/mqtt.js'
import { rawDevice, recordAll, setupHub, twinRequest } from '../helpers/raw-mqtt.js'
import type { Received } from '../helpers/mqtt.js'

const home = tempHome()
let broker: TestHub
let a: MqttClient
let b: MqttClient
let aGot: Received[]

before(async () => {
  await setupHub(home, ['iso-a', 'iso-b'])
  await Promise.all([
    cliJson(home, ['twin', 'update', '--device', 'iso-a', '--desired', '{"owner": "a"}']),
    cliJson(home, ['twin', 'update', '--device', 'iso-b', '--desired', '{"owner": "b"}']),
  ])
  broker = await startTestHub({ inMemory: false, home })
  ;[a, b] = await Promise.all([rawDevice(home, broker, 'iso-a'), rawDevice(home, broker, 'iso-b')])
  for (const c of [a, b]) {
    const id = c.options.clientId as string
    await subscribeOk(c, '$iothub/twin/res/#')
    await subscribeOk(c, '$iothub/methods/POST/#')
    await subscribeOk(c, '$iothub/twin/PATCH/properties/desired/#')
    await subscribeOk(c, `devices/${id}/messages/devicebound/#`, 1)
  }
  aGot = recordAll(a)
})

after(async () => {
  await Promise.all([a?.endAsync(), b?.endAsync()])
  await broker?.stop()
})

test("filters reaching another identity's IoT Hub topics are refused with SUBACK 0x80", async () => {
  assert.deepEqual(await subscribeGranted(a, '#'), [128])
  assert.deepEqual(await subscribeGranted(a, 'devices/iso-b/messages/devicebound/#', 1), [128])
  assert.deepEqual(await subscribeGranted(a, 'devices/+/messages/devicebound/#', 1), [128])
  assert.deepEqual(await subscribeGranted(a, '$edgemq/iso-b/$iothub/twin/res/#'), [128])
  assert.deepEqual(await subscribeGranted(a, '$iothub/#'), [128])
  // A refused filter does not end the session; its own topics still work.
  assert.ok(a.connected)
  const res = await twinRequest(a, '$iothub/twin/GET/?$rid=sub-check', '', 'sub-check')
  assert.match(res.topic, /^\$iothub\/twin\/res\/200\//)
})

test("A never receives B's twin responses, desired pushes, method calls or C2D, even with the same rids concurrently", async () => {
  aGot.length = 0
  const N = 20
  const rids = Array.from({ length: N }, (_, i) => `same-${i}`)
  // B's method call and C2D, served while the twin traffic runs.
  const bMethod = nextMessage(b, (m) => m.topic.startsWith('$iothub/methods/POST/secret/'))
  const invoke = runCli(['method', 'invoke', '--device', 'iso-b', '--method', 'secret', '--payload', '{"for": "b"}', '--timeout', '10'], { home })
  const c2d = cliJson(home, ['c2d', 'send', '--device', 'iso-b', '--data', 'for b only'])
  const desired = cliJson(home, ['twin', 'update', '--device', 'iso-b', '--desired', '{"push": "b"}'])
  const bPush = nextMessage(b, (m) => m.topic.startsWith('$iothub/twin/PATCH/properties/desired/'))
  const bC2d = nextMessage(b, (m) => m.topic.startsWith('devices/iso-b/messages/devicebound/'))

  const [aRes, bRes] = await Promise.all([
    Promise.all(rids.map((rid) => twinRequest(a, `$iothub/twin/GET/?$rid=${rid}`, '', rid))),
    Promise.all(
      rids.map((rid, i) =>
        i % 2 === 0 ? twinRequest(b, `$iothub/twin/GET/?$rid=${rid}`, '', rid) : twinRequest(b, `$iothub/twin/PATCH/properties/reported/?$rid=${rid}`, JSON.stringify({ n: i }), rid),
      ),
    ),
  ])
  for (const r of aRes) assert.equal((JSON.parse(r.payload.toString()) as { desired: { owner: string } }).desired.owner, 'a')
  for (const [i, r] of bRes.entries()) {
    if (i % 2 === 0) assert.equal((JSON.parse(r.payload.toString()) as { desired: { owner: string } }).desired.owner, 'b')
    else assert.match(r.topic, /^\$iothub\/twin\/res\/204\//)
  }

  const call = await bMethod
  const rid = /\?\$rid=([^&]+)$/.exec(call.topic)?.[1]
  assert.ok(rid)
  await b.publishAsync(`$iothub/methods/res/200/?$rid=${rid}`, '{"answered": "b"}')
  const inv = await invoke
  assert.equal(inv.code, 0, inv.stderr)
  assert.deepEqual(JSON.parse(inv.stdout), { status: 200, payload: { answered: 'b' } })
  await Promise.all([c2d, desired, bPush, bC2d])

  // Fence: everything above was published to the broker before this request, and A's messages
  // arrive in order, so anything misrouted to A would be in aGot by the time the answer comes.
  await twinRequest(a, '$iothub/twin/GET/?$rid=fence', '', 'fence')
  const foreign = aGot.filter((m) => !(m.topic.startsWith('$iothub/twin/res/200/') && (JSON.parse(m.payload.toString()) as { desired: { owner: string } }).desired.owner === 'a'))
  assert.deepEqual(
    foreign.map((m) => m.topic),
    [],
    'A received messages meant for B',
  )
  assert.equal(aGot.length, N + 1)
})

test("A cannot answer B's method call or publish into B's topics", async () => {
  const bMethod = nextMessage(b, (m) => m.topic.startsWith('$iothub/methods/POST/steal/'))
  const invoke = runCli(['method', 'invoke', '--device', 'iso-b', '--method', 'steal', '--timeout', '10'], { home })
  const call = await bMethod
  const rid = /\?\$rid=([^&]+)$/.exec(call.topic)?.[1] as string
  // A answers with B's rid: the hub ignores it (A is not the callee); B's own answer wins.
  await a.publishAsync(`$iothub/methods/res/500/?$rid=${rid}`, '{"from": "a"}')
  await b.publishAsync(`$iothub/methods/res/200/?$rid=${rid}`, '{"from": "b"}')
  const inv = await invoke
  assert.equal(inv.code, 0, inv.stderr)
  assert.deepEqual(JSON.parse(inv.stdout), { status: 200, payload: { from: 'b' } })
  assert.ok(a.connected)
})
