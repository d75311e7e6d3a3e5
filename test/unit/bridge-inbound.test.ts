// Issue 21 item 4: what the bridge brings `in` from the parent is published on the child through
// the child's authorization pipeline (as its edge device). A C2D message or `$iothub/…` request
// coming down a broad `in` rule never reaches a device; ordinary `in` topics still flow, in order.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { deviceOf, hubPair } from '../helpers/hub-pair.js'
import { collect, type Received } from '../helpers/mqtt.js'

test('bridge in: C2D and $iothub topics from the parent are refused on the child; alerts flow', async (t) => {
  // The parent lets its child edge device subscribe to every device topic (a broad, careless rule).
  const { parent, child } = await hubPair(t, {
    parentPolicy: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['alerts/#', 'devices/#'] }] }],
    parentDevices: ['sensor', 'watcher'],
    childDevices: ['sensor', 'local'],
    settings: [{ direction: 'in', topic: 'devices/#' }, { direction: 'in', topic: 'alerts/#' }],
  })

  const sensor = await deviceOf(t, child, 'sensor')
  await sensor.subscribeAsync('devices/sensor/messages/devicebound/#', { qos: 1 })
  const local = await deviceOf(t, child, 'local')
  await local.subscribeAsync('alerts/#', { qos: 1 })
  const sensorGot: Received[] = []
  sensor.on('message', (topic, payload, packet) => sensorGot.push({ topic, payload, qos: packet.qos, retain: packet.retain }))

  // The bridge subscribes upstream after it connects: wait until an alert makes the trip.
  const watcher = await deviceOf(t, parent, 'watcher')
  const first = collect(local, 1, { timeoutMs: 10_000 })
  const probe = setInterval(() => void watcher.publishAsync('alerts/probe', 'p', { qos: 1 }), 200)
  await first.finally(() => clearInterval(probe))

  // The parent's service sends a C2D to ITS sensor: down the `devices/#` rule it must not become the child's.
  // The parent's sensor is subscribed, so the C2D is published at once (an unsubscribed device's
  // C2D would wait in the parent's C2D queue and never reach the bridge at all).
  const parentSensor = await deviceOf(t, parent, 'sensor')
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
