/**
 * Issue 6, routes (PROTOCOL.md §5) through a real broker: `edgehub set` with a WHERE route from
 * module `sensor`'s outputs to module `filter`'s input delivers only matching messages; a
 * `$upstream` route makes them reach `monitor`; a route change applies live (no restart).
 * The sensor and filter are plain MQTT.js module clients on the edge device `edge-gateway`.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { parseIotHubTopic } from '../../src/iothub/index.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { cliJson, runCli, tempHome } from '../helpers/cli.js'
import { nextMessage, type Received, subscribeOk } from '../helpers/mqtt.js'
import { rawDevice, recordAll, type RunningMonitor, setupHub, startMonitor } from '../helpers/raw-mqtt.js'

const home = tempHome()
let broker: TestHub
let sensor: MqttClient
let filter: MqttClient
let plain: MqttClient
let inputs: Received[]
let monitor: RunningMonitor | undefined

const SENSOR_OUT = 'devices/edge-gateway/modules/sensor/messages/events/'

/** `edgehub set -` with a routes patch; resolves once the broker has loaded `routeCount` routes. */
async function setRoutes(routes: Record<string, string>, routeCount: number): Promise<void> {
  const loaded = broker.waitForLog(new RegExp(`"routes":${routeCount}\\b.*\\$edgeHub configuration`), { since: broker.mark() })
  const r = await runCli(['edgehub', 'set', '-'], { home, input: JSON.stringify({ routes }) })
  assert.equal(r.code, 0, r.stderr)
  await loaded
}

async function sendTemp(temperature: number, output = 'out1'): Promise<void> {
  assert.ok(sensor.connected, 'the sensor client is not connected')
  await sensor.publishAsync(`${SENSOR_OUT}%24.on=${output}&temperature=${temperature}`, JSON.stringify({ temperature }), { qos: 1 })
}

const temps = (ms: Received[]) => ms.map((m) => (JSON.parse(m.payload.toString()) as { temperature: number }).temperature)

before(async () => {
  await setupHub(home, ['rdev', 'edge-gateway/sensor', 'edge-gateway/filter'])
  broker = await startTestHub({ inMemory: false, home })
  ;[sensor, filter, plain] = await Promise.all([rawDevice(home, broker, 'edge-gateway/sensor'), rawDevice(home, broker, 'edge-gateway/filter'), rawDevice(home, broker, 'rdev')])
  await subscribeOk(filter, 'devices/edge-gateway/modules/filter/inputs/#', 1)
  inputs = recordAll(filter)
})

after(async () => {
  await monitor?.stop()
  await Promise.all([sensor?.endAsync(), filter?.endAsync(), plain?.endAsync()])
  await broker?.stop()
})

test('a WHERE route delivers only matching module outputs to the module input', async () => {
  await setRoutes({ toFilter: 'FROM /messages/modules/sensor/outputs/* WHERE temperature > 30 INTO BrokeredEndpoint("/modules/filter/inputs/in1")' }, 1)
  const last = nextMessage(filter, (m) => m.payload.toString().includes('"temperature":40'))
  for (const t of [35, 25, 30, 31.5, 40]) await sendTemp(t)
  const m = await last
  // In order, from one publisher: everything the route let through arrived before the 40.
  assert.deepEqual(temps(inputs), [35, 31.5, 40])
  const parsed = parseIotHubTopic(m.topic)
  assert.equal(parsed.kind, 'module-input')
  if (parsed.kind !== 'module-input') return
  assert.equal(parsed.deviceId, 'edge-gateway')
  assert.equal(parsed.moduleId, 'filter')
  assert.equal(parsed.inputName, 'in1')
  assert.equal(parsed.properties.temperature, '40')
  assert.equal(m.qos, 1)

  // The CLI's module output (`telemetry send --output-name`) is routed the same way.
  const cliMsg = nextMessage(filter, (x) => x.payload.toString().includes('"temperature":55'))
  await cliJson(home, ['telemetry', 'send', '-d', 'edge-gateway', '-m', 'sensor', '--output-name', 'out1', '--data', '{"temperature":55}', '--props', 'temperature=55'])
  await cliMsg
  assert.deepEqual(temps(inputs), [35, 31.5, 40, 55])
  // The CLI connected with the sensor's client id, which took over the raw session (PROTOCOL.md §1).
  await sensor.endAsync(true)
  sensor = await rawDevice(home, broker, 'edge-gateway/sensor')
})

test('a live route change applies without restart; a $upstream route reaches monitor, the default route is gone', async () => {
  await setRoutes(
    {
      toFilter: 'FROM /messages/modules/sensor/outputs/* WHERE temperature > 45 INTO BrokeredEndpoint("/modules/filter/inputs/in1")',
      up: 'FROM /messages/modules/sensor/outputs/* INTO $upstream',
    },
    2,
  )
  monitor = await startMonitor(home, [], async (marker) => {
    await sensor.publishAsync(`${SENSOR_OUT}%24.on=probe`, JSON.stringify({ marker }), { qos: 1 })
  })
  inputs.length = 0
  // Device telemetry matches no declared route (declared routes replace the default one).
  await plain.publishAsync('devices/rdev/messages/events/', JSON.stringify({ fromDevice: true }), { qos: 1 })
  const last = nextMessage(filter, (m) => m.payload.toString().includes('"temperature":50'))
  await sendTemp(40)
  await sendTemp(50)
  await last
  assert.deepEqual(temps(inputs), [50], 'the old WHERE (> 30) still applied after the live change')
  const e40 = await monitor.waitFor((x) => (x.event.payload as { temperature?: number }).temperature === 40)
  const e50 = await monitor.waitFor((x) => (x.event.payload as { temperature?: number }).temperature === 50)
  for (const e of [e40, e50]) {
    assert.equal(e.event.origin, 'edge-gateway')
    assert.equal(e.event.module, 'sensor')
  }
  assert.equal(e50.event.properties?.application.temperature, '50')
  assert.ok(!monitor.events.some((x) => x.event.origin === 'rdev'), 'device telemetry reached $upstream without a route')
  assert.ok(broker.running(), 'no restart')
})
