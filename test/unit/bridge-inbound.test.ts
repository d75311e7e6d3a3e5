// Issue 21 item 4: what the bridge brings `in` from the parent is published on the child through
// the child's authorization pipeline (as its edge device). A C2D message or `$iothub/…` request
// coming down a broad `in` rule never reaches a device; ordinary `in` topics still flow, in order.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { parseUpstreamConnectionString } from '../../src/bridge/upstream.js'
import { startHub, type Hub } from '../../src/emulator/index.js'
import { collect, connect, iothubUsername, type Received } from '../helpers/mqtt.js'

async function waitFor(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  // The bridge's state has no event a test can subscribe to; poll it, bounded.
  const deadline = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function deviceOf(hub: Hub, id: string) {
  return connect({ port: hub.ports.mqtt as number, clientId: id, password: await hub.sas(id), username: iothubUsername(id, hub.hostName) })
}

test('bridge in: C2D and $iothub topics from the parent are refused on the child; alerts flow', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-bridge-in-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // The parent lets its child edge device subscribe to every device topic (a broad, careless rule).
  const parent = await startHub({
    hubName: 'parenthub',
    policy: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['alerts/#', 'devices/#'] }] }],
  })
  t.after(() => parent.close())
  await parent.createDevice('child-edge', { edge: true })
  await parent.createDevice('sensor')
  await parent.createDevice('watcher')
  const child = await startHub({ hubName: 'childhub', policy: 'allow-all' })
  t.after(() => child.close())
  await child.createDevice('sensor')
  await child.createDevice('local')

  const caFile = join(dir, 'parent-ca.pem')
  writeFileSync(caFile, parent.caPem)
  const cs = await parent.deviceConnectionString('child-edge', { gateway: 'localhost' })
  const upstream = parseUpstreamConnectionString(cs, { port: parent.ports.mqtts, caFile })
  await child.context.store.updateHub((h) => ({ ...h, upstream }))
  Object.assign(child.context.hub, { upstream })
  await child.setEdgeHub({ mqttBroker: { bridges: [{ endpoint: '$upstream', settings: [{ direction: 'in', topic: 'devices/#' }, { direction: 'in', topic: 'alerts/#' }] }] } })
  await waitFor('the bridge connected', () => child.broker.bridge.status().state === 'connected')

  const sensor = await deviceOf(child, 'sensor')
  t.after(() => sensor.endAsync())
  await sensor.subscribeAsync('devices/sensor/messages/devicebound/#', { qos: 1 })
  const local = await deviceOf(child, 'local')
  t.after(() => local.endAsync())
  await local.subscribeAsync('alerts/#', { qos: 1 })
  const sensorGot: Received[] = []
  sensor.on('message', (topic, payload, packet) => sensorGot.push({ topic, payload, qos: packet.qos, retain: packet.retain }))

  // The bridge subscribes upstream after it connects: wait until an alert makes the trip.
  const watcher = await deviceOf(parent, 'watcher')
  t.after(() => watcher.endAsync())
  const first = collect(local, 1, { timeoutMs: 10_000 })
  const probe = setInterval(() => void watcher.publishAsync('alerts/probe', 'p', { qos: 1 }), 200)
  await first.finally(() => clearInterval(probe))

  // The parent's service sends a C2D to ITS sensor: down the `devices/#` rule it must not become the child's.
  // The parent's sensor is subscribed, so the C2D is published at once (an unsubscribed device's
  // C2D would wait in the parent's C2D queue and never reach the bridge at all).
  const parentSensor = await deviceOf(parent, 'sensor')
  t.after(() => parentSensor.endAsync())
  await parentSensor.subscribeAsync('devices/sensor/messages/devicebound/#', { qos: 1 })
  const parentSensorGot = collect(parentSensor, 1)
  const refusedBefore = child.broker.bridgeRefused
  await parent.sendC2d('sensor', 'forged for the child sensor')
  // Same connection, same order: once alerts/after arrives the C2D has been decided.
  const after = collect(local, 1, { filter: (m) => m.topic === 'alerts/after' })
  await watcher.publishAsync('alerts/after', 'a', { qos: 1 })
  await after
  assert.deepEqual(sensorGot.map((m) => m.topic), [], 'no C2D message reached the child sensor through the bridge')
  assert.ok(child.broker.bridgeRefused > refusedBefore, 'the bridged C2D was refused and counted')
  assert.equal((await parentSensorGot)[0].payload.toString(), 'forged for the child sensor', 'the parent\'s own sensor got it')
})
