/**
 * Issue 6, the wire format: a plain MQTT.js client speaking raw IoT Hub topics (no edgemq
 * client code) against the real broker, with the service side driven by the real CLI.
 * Twin GET body shape, reported PATCH → res/204 with $version, desired push, direct methods
 * with both response forms, C2D property bag, telemetry property bags reaching `monitor`, and
 * the seed's own forms (`?rid=`, `…/GET/?rid=<r>/#`, `devices/<d>/<m>/messages/events`).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { parseIotHubTopic } from '../../src/iothub/index.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { cliJson, runCli, tempHome } from '../helpers/cli.js'
import { nextMessage, subscribeOk } from '../helpers/mqtt.js'
import { cliSas, rawDevice, rawProbe, type RunningMonitor, setupHub, startMonitor, twinRequest } from '../helpers/raw-mqtt.js'
import type { ServiceTwinJson, TwinResponseBody } from '../../src/twin/types.js'

const home = tempHome()
let broker: TestHub
let dev: MqttClient
let mod: MqttClient
let monitor: RunningMonitor


before(async () => {
  await setupHub(home, ['wdev', 'edge-gateway/wmod', 'edge-gateway/wmod2'])
  broker = await startTestHub({ inMemory: false, home })
  // Passwords exactly as a user gets them: `edgemq sas --device … [--module …] --raw`.
  const [devSas, modSas] = await Promise.all([cliSas(home, 'wdev'), cliSas(home, 'edge-gateway/wmod')])
  ;[dev, mod] = await Promise.all([rawDevice(home, broker, 'wdev', devSas), rawDevice(home, broker, 'edge-gateway/wmod', modSas)])
  await Promise.all([subscribeOk(dev, '$iothub/twin/res/#'), subscribeOk(mod, '$iothub/twin/res/#')])
  monitor = await startMonitor(home, [], rawProbe(dev, 'wdev'))
})

after(async () => {
  await monitor?.stop()
  await Promise.all([dev?.endAsync(), mod?.endAsync()])
  await broker?.stop()
})

test('twin GET answers res/200 with {desired:{…,$version}, reported:{…,$version}}', async () => {
  await cliJson(home, ['twin', 'update', '--device', 'wdev', '--desired', '{"interval": 5, "mode": {"fast": true}}'])
  const res = await twinRequest(dev, '$iothub/twin/GET/?$rid=g1', '', 'g1')
  assert.equal(res.topic, '$iothub/twin/res/200/?$rid=g1')
  const body = JSON.parse(res.payload.toString()) as TwinResponseBody
  assert.deepEqual(Object.keys(body).sort(), ['desired', 'reported'])
  assert.equal(body.desired.interval, 5)
  assert.deepEqual(body.desired.mode, { fast: true })
  assert.equal(typeof body.desired.$version, 'number')
  assert.equal(typeof body.reported.$version, 'number')
  const shown = await cliJson<ServiceTwinJson>(home, ['twin', 'show', '--device', 'wdev'])
  assert.equal(body.desired.$version, shown.properties.desired.$version)
})

test('reported PATCH (QoS 1) answers res/204/?$rid=…&$version=n and twin show sees it', async () => {
  const before = JSON.parse((await twinRequest(dev, '$iothub/twin/GET/?$rid=g2', '', 'g2')).payload.toString()) as TwinResponseBody
  const res = await twinRequest(dev, '$iothub/twin/PATCH/properties/reported/?$rid=r1', JSON.stringify({ firmware: '1.0.3', battery: { level: 87 } }), 'r1', '$rid', 1)
  assert.equal(res.topic, `$iothub/twin/res/204/?$rid=r1&$version=${before.reported.$version + 1}`)
  assert.equal(res.payload.length, 0)
  const after = JSON.parse((await twinRequest(dev, '$iothub/twin/GET/?$rid=g3', '', 'g3')).payload.toString()) as TwinResponseBody
  assert.deepEqual(after.reported, { firmware: '1.0.3', battery: { level: 87 }, $version: before.reported.$version + 1 })
  const shown = await cliJson<ServiceTwinJson>(home, ['twin', 'show', '--device', 'wdev'])
  assert.equal(shown.properties.reported.firmware, '1.0.3')
  assert.equal(shown.properties.reported.$version, before.reported.$version + 1)
  assert.equal(shown.connectionState, 'Connected')
})

test('a desired patch from `twin update` is pushed on $iothub/twin/PATCH/properties/desired/?$version=n within 1 s', async () => {
  await subscribeOk(dev, '$iothub/twin/PATCH/properties/desired/#')
  const pushed = nextMessage(dev, (m) => m.topic.startsWith('$iothub/twin/PATCH/properties/desired/'))
  const r = await cliJson<ServiceTwinJson>(home, ['twin', 'update', '--device', 'wdev', '--desired', '{"fan": "on"}'])
  const cliDone = Date.now()
  const m = await pushed
  assert.ok(Date.now() - cliDone < 1000, 'desired push arrived later than 1 s after twin update returned')
  const n = r.properties.desired.$version
  assert.equal(m.topic, `$iothub/twin/PATCH/properties/desired/?$version=${n}`)
  assert.deepEqual(JSON.parse(m.payload.toString()), { fan: 'on', $version: n })
})

test('direct method: request on $iothub/methods/POST/<name>/?$rid=r; both response forms reach `method invoke`', async () => {
  await subscribeOk(dev, '$iothub/methods/POST/#')
  const requestRe = /^\$iothub\/methods\/POST\/reboot\/\?\$rid=([^&/]+)$/

  // IoT Hub's form: $iothub/methods/res/200/?$rid=<r>
  let req = nextMessage(dev, (m) => m.topic.startsWith('$iothub/methods/POST/'))
  let invoke = runCli(['method', 'invoke', '--device', 'wdev', '--method', 'reboot', '--payload', '{"delay": 1}', '--timeout', '10'], { home })
  let m = await req
  let rid = requestRe.exec(m.topic)?.[1]
  assert.ok(rid, `unexpected request topic ${m.topic}`)
  assert.deepEqual(JSON.parse(m.payload.toString()), { delay: 1 })
  await dev.publishAsync(`$iothub/methods/res/200/?$rid=${rid}`, JSON.stringify({ rebooting: true }))
  let r = await invoke
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { status: 200, payload: { rebooting: true } })

  // The seed's form: $iothub/methods/res/<status>/<r> (az alias on the caller's side).
  req = nextMessage(dev, (x) => x.topic.startsWith('$iothub/methods/POST/'))
  invoke = runCli(['hub', 'invoke-device-method', '-d', 'wdev', '--mn', 'reboot', '--mp', '{"delay": 2}', '--to', '10'], { home })
  m = await req
  rid = requestRe.exec(m.topic)?.[1]
  assert.ok(rid, `unexpected request topic ${m.topic}`)
  await dev.publishAsync(`$iothub/methods/res/201/${rid}`, JSON.stringify({ seed: 'form' }))
  r = await invoke
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { status: 201, payload: { seed: 'form' } })
  assert.ok(dev.connected)
})

test('C2D arrives on devices/<d>/messages/devicebound/<property bag> with app and system properties', async () => {
  await subscribeOk(dev, 'devices/wdev/messages/devicebound/#', 1)
  const got = nextMessage(dev, (m) => m.topic.startsWith('devices/wdev/messages/devicebound/'))
  const sent = await cliJson<{ messageId: string }>(home, ['c2d', 'send', '--device', 'wdev', '--data', 'hello device', '--props', 'color=blue;$.mid=m-42;$.cid=c-7'])
  assert.equal(sent.messageId, 'm-42')
  const m = await got
  assert.equal(m.payload.toString(), 'hello device')
  assert.equal(m.qos, 1)
  const t = parseIotHubTopic(m.topic)
  assert.equal(t.kind, 'c2d')
  if (t.kind !== 'c2d') return
  assert.equal(t.deviceId, 'wdev')
  assert.deepEqual(t.properties, { color: 'blue' })
  assert.equal(t.systemProperties.messageId, 'm-42')
  assert.equal(t.systemProperties.correlationId, 'c-7')
  assert.equal(t.systemProperties.to, '/devices/wdev/messages/devicebound')
  // The bag is URL-encoded on the wire, as IoT Hub sends it.
  assert.match(m.topic, /(%24|\$)\.mid=m-42/)
  assert.match(m.topic, /color=blue/)
})

test('device and module telemetry with property bags reach `monitor` with origin, module, properties, payload', async () => {
  await dev.publishAsync('devices/wdev/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&alert=high', JSON.stringify({ temp: 31 }), { qos: 1 })
  const e = await monitor.waitFor((x) => x.event.origin === 'wdev' && (x.event.payload as { temp?: number }).temp === 31)
  assert.equal(e.event.module, '')
  assert.equal(e.event.properties?.application.alert, 'high')
  assert.ok(Object.values(e.event.properties?.system ?? {}).includes('application/json'), JSON.stringify(e.event.properties))

  await mod.publishAsync('devices/edge-gateway/modules/wmod/messages/events/level=3', JSON.stringify({ temp: 32 }), { qos: 1 })
  const me = await monitor.waitFor((x) => (x.event.payload as { temp?: number }).temp === 32)
  assert.equal(me.event.origin, 'edge-gateway')
  assert.equal(me.event.module, 'wmod')
  assert.equal(me.event.properties?.application.level, '3')
})

test("the seed's forms: GET ?rid= answered with rid, GET ?rid=<r>/#, reported ?rid=, devices/<d>/<m>/messages/events", async () => {
  let res = await twinRequest(dev, '$iothub/twin/GET/?rid=7', '', '7', 'rid')
  assert.equal(res.topic, '$iothub/twin/res/200/?rid=7')
  assert.ok('desired' in (JSON.parse(res.payload.toString()) as TwinResponseBody))

  // As the seed's prose writes it (a literal `/#` after the request id).
  res = await twinRequest(dev, '$iothub/twin/GET/?rid=8/#', '', '8', 'rid')
  assert.equal(res.topic, '$iothub/twin/res/200/?rid=8')
  assert.ok(dev.connected, 'the client was dropped for the seed form')

  res = await twinRequest(dev, '$iothub/twin/PATCH/properties/reported/?rid=9', JSON.stringify({ seed: true }), '9', 'rid')
  assert.match(res.topic, /^\$iothub\/twin\/res\/204\/\?rid=9&\$version=\d+$/)

  // Module telemetry in the seed's form reaches monitor as that module's.
  await mod.publishAsync('devices/edge-gateway/wmod/messages/events', JSON.stringify({ seedForm: 1 }), { qos: 1 })
  const e = await monitor.waitFor((x) => (x.event.payload as { seedForm?: number }).seedForm === 1)
  assert.equal(e.event.origin, 'edge-gateway')
  assert.equal(e.event.module, 'wmod')
  assert.ok(mod.connected)
})

test('UNSUBSCRIBE from $iothub/methods/POST/# takes effect: the device is no longer callable', async () => {
  const c = await rawDevice(home, broker, 'edge-gateway/wmod2')
  try {
    await subscribeOk(c, '$iothub/methods/POST/#')
    const req = nextMessage(c, (m) => m.topic.startsWith('$iothub/methods/POST/'))
    const first = runCli(['method', 'invoke', '-d', 'edge-gateway', '-m', 'wmod2', '--method', 'm1', '--timeout', '5'], { home })
    const rid = /\?\$rid=([^&]+)$/.exec((await req).topic)?.[1]
    await c.publishAsync(`$iothub/methods/res/200/?$rid=${rid}`, '{}')
    assert.equal((await first).code, 0)
    await c.unsubscribeAsync('$iothub/methods/POST/#')
    const r = await runCli(['method', 'invoke', '-d', 'edge-gateway', '-m', 'wmod2', '--method', 'm2', '--timeout', '5'], { home })
    assert.equal(r.code, 1, `expected "not online" after UNSUBSCRIBE, got exit ${r.code}: ${r.stdout}${r.stderr}`)
    assert.match(r.stderr, /not online/)
  } finally {
    await c.endAsync()
  }
})
