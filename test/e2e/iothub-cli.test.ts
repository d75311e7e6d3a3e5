/**
 * Issue 6, both sides from the CLI: every IoT Hub primitive end to end through a real broker,
 * the service side (`method invoke`, `c2d send`, `monitor`, `twin update/show`) against the
 * device side (`method serve`, `c2d receive`, `telemetry send`, `twin get/report`), for a device
 * and for a module. The broker runs at debug level so a serving command's SUBSCRIBE is an event
 * the test can wait for.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { startTestHub, type TestHub } from '../helpers/hub.js'
import { cliJson, runCli, tempHome } from '../helpers/cli.js'
import { rawDevice, rawProbe, type RunningMonitor, setupHub, startMonitor } from '../helpers/raw-mqtt.js'
import type { ServiceTwinJson, TwinResponseBody } from '../../src/twin/types.js'

const home = tempHome()
let broker: TestHub
let probe: MqttClient
let monitor: RunningMonitor


/** The broker's debug log line for `clientId` subscribing to something matching `filter`. */
function subscribed(clientId: string, filter: RegExp): Promise<string> {
  const id = clientId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return broker.waitForLog(new RegExp(`"client":"${id}".*"subscriptions":\\[[^\\]]*${filter.source}.*"msg":"SUBSCRIBE"`), { timeoutMs: 15_000 })
}

before(async () => {
  await setupHub(home, ['cdev', 'cdev2', 'cprobe', 'edge-gateway/cmod'])
  broker = await startTestHub({ inMemory: false, home, logLevel: 'debug' })
  probe = await rawDevice(home, broker, 'cprobe')
  monitor = await startMonitor(home, ['-d', 'c*'], rawProbe(probe, 'cprobe'))
})

after(async () => {
  await monitor?.stop()
  await probe?.endAsync()
  await broker?.stop()
})

test('telemetry send → monitor (JSON per event; --device glob filters)', async () => {
  const sent = await cliJson<{ sent: number; device: string }>(home, ['telemetry', 'send', '--device', 'cdev', '--data', '{"n": {{index}}}', '--props', 'alert=yes;$.ct=application/json', '--count', '3'])
  assert.deepEqual(sent, { sent: 3, device: 'cdev' })
  for (const n of [0, 1, 2]) {
    const e = await monitor.waitFor((x) => x.event.origin === 'cdev' && (x.event.payload as { n?: number }).n === n)
    assert.equal(e.event.module, '')
    assert.equal(e.event.properties?.application.alert, 'yes')
  }
  // A module of edge-gateway does not match `-d 'c*'`; the az alias's message sent after it does.
  await cliJson(home, ['telemetry', 'send', '-d', 'edge-gateway', '-m', 'cmod', '--data', '{"fromModule": 1}'])
  await cliJson(home, ['device', 'send-d2c-message', '-d', 'cdev2', '--data', '{"after": 1}'])
  const e = await monitor.waitFor((x) => (x.event.payload as { after?: number }).after === 1)
  assert.equal(e.event.origin, 'cdev2')
  assert.ok(!monitor.events.some((x) => x.event.origin === 'edge-gateway'), 'monitor -d c* printed an edge-gateway event')
})

test('module telemetry from `telemetry send -m` reaches monitor -m as that module', async () => {
  const m = await startMonitor(home, ['-d', 'edge-gateway', '-m', 'cmod'], async (marker) => {
    await cliJson(home, ['telemetry', 'send', '-d', 'edge-gateway', '-m', 'cmod', '--data', JSON.stringify({ marker })])
  })
  try {
    await cliJson(home, ['telemetry', 'send', '-d', 'edge-gateway', '-m', 'cmod', '--data', '{"t": 40}', '--props', 'unit=C'])
    const e = await m.waitFor((x) => (x.event.payload as { t?: number }).t === 40)
    assert.equal(e.event.origin, 'edge-gateway')
    assert.equal(e.event.module, 'cmod')
    assert.equal(e.event.properties?.application.unit, 'C')
  } finally {
    const r = await m.stop()
    assert.equal(r.code, 0, r.stderr)
  }
})

test('method serve ↔ method invoke (device, fixed answer) and module (echo, az alias)', async () => {
  const ready = subscribed('cdev', /methods\/POST/)
  const serve = runCli(['method', 'serve', '--device', 'cdev', '--payload', '{"ok": true}', '--count', '1'], { home })
  await ready
  const r = await cliJson<{ status: number; payload: unknown }>(home, ['method', 'invoke', '--device', 'cdev', '--method', 'ping', '--payload', '{"n": 1}', '--timeout', '10'])
  assert.deepEqual(r, { status: 200, payload: { ok: true } })
  const served = await serve
  assert.equal(served.code, 0, served.stderr)
  assert.deepEqual(JSON.parse(served.stdout.trim()), { method: 'ping', payload: { n: 1 } })

  const modReady = subscribed('edge-gateway/cmod', /methods\/POST/)
  const modServe = runCli(['method', 'serve', '-d', 'edge-gateway', '-m', 'cmod', '--status', '202', '--count', '1'], { home })
  await modReady
  const mr = await cliJson<{ status: number; payload: unknown }>(home, ['hub', 'invoke-module-method', '-d', 'edge-gateway', '-m', 'cmod', '--mn', 'echo', '--mp', '{"x": [1, 2]}', '--to', '10'])
  assert.deepEqual(mr, { status: 202, payload: { x: [1, 2] } })
  assert.equal((await modServe).code, 0)
})

test('c2d send → c2d receive (body, application and system properties)', async () => {
  const ready = subscribed('cdev2', /messages\/devicebound/)
  const receive = runCli(['c2d', 'receive', '--device', 'cdev2', '--count', '1', '--timeout', '20'], { home })
  await ready
  const sent = await cliJson<{ messageId: string }>(home, ['c2d', 'send', '--device', 'cdev2', '--data', 'reboot at noon', '--props', 'priority=high;$.mid=c2d-1'])
  assert.equal(sent.messageId, 'c2d-1')
  const r = await receive
  assert.equal(r.code, 0, r.stderr)
  const got = JSON.parse(r.stdout.trim()) as { data: string; properties: Record<string, string>; systemProperties: Record<string, string> }
  assert.equal(got.data, 'reboot at noon')
  assert.deepEqual(got.properties, { priority: 'high' })
  assert.equal(got.systemProperties.messageId, 'c2d-1')
})

test('twin update → twin get (device and module, as the device sees it over MQTT)', async () => {
  const upd = await cliJson<ServiceTwinJson>(home, ['twin', 'update', '--device', 'cdev', '--desired', '{"interval": 9, "led": {"color": "red"}}'])
  const got = await cliJson<TwinResponseBody>(home, ['twin', 'get', '--device', 'cdev'])
  assert.equal(got.desired.interval, 9)
  assert.deepEqual(got.desired.led, { color: 'red' })
  assert.equal(got.desired.$version, upd.properties.desired.$version)

  await cliJson(home, ['hub', 'module-twin', 'update', '-d', 'edge-gateway', '-m', 'cmod', '--desired', '{"threshold": 30}'])
  const mgot = await cliJson<TwinResponseBody>(home, ['twin', 'get', '-d', 'edge-gateway', '-m', 'cmod'])
  assert.equal(mgot.desired.threshold, 30)
})

test('twin report → twin show (device and module)', async () => {
  const rep = await cliJson<{ reportedVersion: number }>(home, ['twin', 'report', '--device', 'cdev', '--reported', '{"firmware": "2.1", "uptime": 42}'])
  const shown = await cliJson<ServiceTwinJson>(home, ['twin', 'show', '--device', 'cdev'])
  assert.equal(shown.properties.reported.firmware, '2.1')
  assert.equal(shown.properties.reported.uptime, 42)
  assert.equal(shown.properties.reported.$version, rep.reportedVersion)

  await cliJson(home, ['twin', 'report', '-d', 'edge-gateway', '-m', 'cmod', '--reported', '{"state": "filtering"}'])
  const mshown = await cliJson<ServiceTwinJson>(home, ['hub', 'module-twin', 'show', '-d', 'edge-gateway', '-m', 'cmod'])
  assert.equal(mshown.moduleId, 'cmod')
  assert.equal(mshown.properties.reported.state, 'filtering')
})
