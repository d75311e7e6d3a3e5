/**
 * Issue 6, bad input: each gets IoT Hub's status or a clear CLI error, and the broker keeps
 * serving (a fresh client connects and gets its twin afterwards). Malformed twin JSON, a 40 KB
 * reported patch and depth 11 → res/400; method invoke on an unknown / offline device (exit 1),
 * a method nobody answers (exit 4); QoS 2 on `$iothub/…` → disconnected. Without a broker,
 * `twin show/update` work on the store and the live-only commands exit 3.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { startTestHub, type TestHub } from '../helpers/hub.js'
import { cliJson, runCli, tempHome } from '../helpers/cli.js'
import { closed, subscribeOk } from '../helpers/mqtt.js'
import { rawDevice, setupHub, twinRequest } from '../helpers/raw-mqtt.js'

const home = tempHome()
let broker: TestHub
let dev: MqttClient

/** A fresh client connects and is answered: the broker survived whatever came before. */
async function assertServing(): Promise<void> {
  assert.ok(broker.running(), 'the broker stopped')
  const fresh = await rawDevice(home, broker, 'efresh')
  try {
    await subscribeOk(fresh, '$iothub/twin/res/#')
    const res = await twinRequest(fresh, '$iothub/twin/GET/?$rid=alive', '', 'alive')
    assert.match(res.topic, /^\$iothub\/twin\/res\/200\//)
  } finally {
    await fresh.endAsync()
  }
}

/** `n` levels of objects below the section root: nested(2) = {"l1": {"l2": {}}}. */
function nested(n: number): Record<string, unknown> {
  let v: Record<string, unknown> = {}
  for (let i = n; i >= 1; i--) v = { [`l${i}`]: v }
  return v
}

before(async () => {
  await setupHub(home, ['edev', 'eoff', 'eslow', 'eq2', 'efresh'])
  broker = await startTestHub({ inMemory: false, home })
  dev = await rawDevice(home, broker, 'edev')
  await subscribeOk(dev, '$iothub/twin/res/#')
})

after(async () => {
  await dev?.endAsync()
  await broker?.stop()
})

test('malformed reported JSON → res/400, the client stays connected', async () => {
  const res = await twinRequest(dev, '$iothub/twin/PATCH/properties/reported/?$rid=bad1', '{"firmware": "1.0",,', 'bad1')
  assert.equal(res.topic, '$iothub/twin/res/400/?$rid=bad1')
  assert.ok((JSON.parse(res.payload.toString()) as { message: string }).message.length > 0)
  const notObject = await twinRequest(dev, '$iothub/twin/PATCH/properties/reported/?$rid=bad2', '[1, 2]', 'bad2')
  assert.match(notObject.topic, /^\$iothub\/twin\/res\/400\//)
  assert.ok(dev.connected)
  await assertServing()
})

test('a 40 KB reported patch → res/400 (limit 32 KB); nothing is stored', async () => {
  const res = await twinRequest(dev, '$iothub/twin/PATCH/properties/reported/?$rid=big', JSON.stringify({ blob: 'x'.repeat(40 * 1024) }), 'big')
  assert.equal(res.topic, '$iothub/twin/res/400/?$rid=big')
  assert.match((JSON.parse(res.payload.toString()) as { message: string }).message, /bytes|KB/)
  const twin = JSON.parse((await twinRequest(dev, '$iothub/twin/GET/?$rid=afterbig', '', 'afterbig')).payload.toString()) as { reported: Record<string, unknown> }
  assert.equal(twin.reported.blob, undefined)
  assert.ok(dev.connected)
  await assertServing()
})

test('nesting depth: 10 levels → 204, 11 levels → 400', async () => {
  const ok = await twinRequest(dev, '$iothub/twin/PATCH/properties/reported/?$rid=d10', JSON.stringify(nested(10)), 'd10')
  assert.match(ok.topic, /^\$iothub\/twin\/res\/204\/\?\$rid=d10&\$version=\d+$/)
  const deep = await twinRequest(dev, '$iothub/twin/PATCH/properties/reported/?$rid=d11', JSON.stringify(nested(11)), 'd11')
  assert.equal(deep.topic, '$iothub/twin/res/400/?$rid=d11')
  assert.match((JSON.parse(deep.payload.toString()) as { message: string }).message, /deep|depth/)
  assert.ok(dev.connected)
  await assertServing()
})

test('method invoke / c2d send / twin show on an unknown device → exit 1 "not found"; invoke on an offline device → exit 1 "not online"', async () => {
  const [unknown, offline, c2dUnknown, twinUnknown] = await Promise.all([
    runCli(['method', 'invoke', '--device', 'ghost', '--method', 'x', '--timeout', '5'], { home }),
    runCli(['method', 'invoke', '--device', 'eoff', '--method', 'x', '--timeout', '5'], { home }),
    runCli(['c2d', 'send', '--device', 'ghost', '--data', 'x'], { home }),
    runCli(['twin', 'show', '--device', 'ghost'], { home }),
  ])
  for (const r of [c2dUnknown, twinUnknown]) {
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /not found/)
  }
  assert.equal(unknown.code, 1, unknown.stderr)
  assert.match(unknown.stderr, /not found/)
  assert.doesNotMatch(unknown.stderr, /^\s+at /m)
  assert.equal(offline.code, 1, offline.stderr)
  assert.match(offline.stderr, /not online/)
  await assertServing()
})

test('method timeout: a device that subscribes but never answers → exit 4 after --timeout 5', async () => {
  const slow = await rawDevice(home, broker, 'eslow')
  try {
    await subscribeOk(slow, '$iothub/methods/POST/#')
    const asked = new Promise<string>((resolve) => slow.once('message', (topic) => resolve(topic)))
    const started = Date.now()
    const r = await runCli(['method', 'invoke', '--device', 'eslow', '--method', 'hang', '--timeout', '5'], { home, timeoutMs: 20_000 })
    assert.equal(r.code, 4, r.stderr)
    assert.match(r.stderr, /did not answer|within 5/)
    assert.ok(Date.now() - started >= 5000, 'gave up before the timeout')
    assert.match(await asked, /^\$iothub\/methods\/POST\/hang\//)
    assert.ok(slow.connected)
  } finally {
    await slow.endAsync()
  }
  await assertServing()
})

test('QoS 2 on an $iothub topic → disconnected; the broker keeps serving', async () => {
  const q2 = await rawDevice(home, broker, 'eq2')
  const gone = closed(q2)
  q2.publish('$iothub/twin/GET/?$rid=q2', '', { qos: 2 })
  await gone
  await assertServing()
})

test('without a broker: twin show/update use the store; method invoke, c2d send and monitor exit 3', async () => {
  const offline = tempHome()
  await setupHub(offline, ['lonely'])
  const updated = await cliJson<{ properties: { desired: Record<string, unknown> } }>(offline, ['twin', 'update', '--device', 'lonely', '--desired', '{"interval": 3}'])
  assert.equal(updated.properties.desired.interval, 3)
  const shown = await cliJson<{ properties: { desired: Record<string, unknown> } }>(offline, ['twin', 'show', '--device', 'lonely'])
  assert.equal(shown.properties.desired.interval, 3)

  const results = await Promise.all([
    runCli(['method', 'invoke', '--device', 'lonely', '--method', 'x'], { home: offline }),
    runCli(['c2d', 'send', '--device', 'lonely', '--data', 'x'], { home: offline }),
    runCli(['monitor', '--timeout', '5'], { home: offline }),
  ])
  for (const r of results) {
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /broker not reachable/)
  }
})
