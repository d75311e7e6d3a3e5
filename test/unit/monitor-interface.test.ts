/**
 * az `hub monitor-events --interface/-i`: an IoT Plug and Play device announces its model id in the
 * CONNECT username (`…/?api-version=…&model-id=dtmi:…`); the hub stamps its telemetry with it
 * (`dt-dataschema`), az prints it as the event's `interface`, and `-i` keeps only those events.
 * Real broker in process, MQTT.js devices; the monitor's own filter and view on what the hub emitted.
 * Also az's --device-query (-q): the devices an IoT Hub query returns.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { modelIdOf } from '../../src/broker/identity.js'
import type { HubEvent } from '../../src/broker/host.js'
import { startHub } from '../../src/emulator/index.js'
import { eventFilter, HubService, monitorView, type WireEvent } from '../../src/service/hub-service.js'
import { connect, iothubUsername, SDK_API_VERSION } from '../helpers/mqtt.js'

const MODEL = 'dtmi:com:example:Thermostat;1'

test('the model id a device announces at CONNECT is its events\' interface (dt-dataschema); -i keeps only that model\'s events', async (t) => {
  const hub = await startHub({ hubName: 'edgemq', ports: { mqtt: 0, mqtts: null, rest: null } })
  t.after(() => hub.close())
  await hub.createDevice('thermo')
  await hub.createDevice('plain')
  const seen: HubEvent[] = []
  const events = hub.events()
  const pnp = await connect({
    port: hub.ports.mqtt as number,
    clientId: 'thermo',
    username: `${iothubUsername('thermo', undefined, SDK_API_VERSION)}&model-id=${encodeURIComponent(MODEL)}`,
    password: await hub.sas('thermo'),
  })
  t.after(() => pnp.endAsync())
  const plain = await connect({ port: hub.ports.mqtt as number, clientId: 'plain', password: await hub.sas('plain') })
  t.after(() => plain.endAsync())
  await pnp.publishAsync('devices/thermo/messages/events/', '{"temperature":21}', { qos: 1 })
  await plain.publishAsync('devices/plain/messages/events/', '{"temperature":5}', { qos: 1 })
  for (let i = 0; i < 2; i++) seen.push((await events.next()).value as HubEvent)

  const wire = (ev: HubEvent): WireEvent => ({ ...ev, systemProperties: { ...ev.systemProperties }, payload: ev.payload.toString('base64') })
  const byDevice = new Map(seen.map((ev) => [ev.deviceId, wire(ev)]))
  const thermo = monitorView(byDevice.get('thermo')!, { props: new Set(['anno']) })
  assert.equal(thermo.event.interface, MODEL)
  assert.equal((thermo.event.annotations as Record<string, unknown>)['dt-dataschema'], MODEL)
  const other = monitorView(byDevice.get('plain')!, { props: new Set(['anno']) })
  assert.equal(other.event.interface, '', 'a device without a model id has no interface, as az prints it')
  assert.equal('dt-dataschema' in (other.event.annotations as Record<string, unknown>), false)

  const only = eventFilter({ interface: MODEL })
  assert.deepEqual([...byDevice.values()].filter(only).map((ev) => ev.deviceId), ['thermo'])
})

test('modelIdOf reads model-id from the username query, URL-decoded; absent or empty → undefined', () => {
  assert.equal(modelIdOf(`edgemq.azure-devices.net/d/?api-version=2021-04-12&model-id=${encodeURIComponent(MODEL)}`), MODEL)
  assert.equal(modelIdOf('edgemq.azure-devices.net/d/m/?model-id=dtmi:a:b;2&api-version=x'), 'dtmi:a:b;2')
  assert.equal(modelIdOf('edgemq.azure-devices.net/d/?api-version=2021-04-12'), undefined)
  assert.equal(modelIdOf('edgemq.azure-devices.net/d/?api-version=1&model-id='), undefined)
  assert.equal(modelIdOf(undefined), undefined)
})

test('--device-query: only events of the devices the IoT Hub query returns; a query without deviceId is refused', async (t) => {
  const hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: null } })
  t.after(() => hub.close())
  for (const id of ['lab-1', 'lab-2', 'office']) await hub.createDevice(id)
  for (const id of ['lab-1', 'lab-2']) await hub.updateTwin(id, { tags: { site: 'lab' } })
  const svc = new HubService(hub.context)
  const devices = await svc.deviceIdsOf("SELECT deviceId FROM devices WHERE tags.site = 'lab'")
  assert.deepEqual([...devices].sort(), ['lab-1', 'lab-2'])
  const only = eventFilter({ devices })
  const ev = (deviceId: string): WireEvent => ({ deviceId, properties: {}, systemProperties: {}, payload: '', enqueuedTime: new Date().toISOString() })
  assert.deepEqual(['lab-1', 'office', 'lab-2'].map(ev).filter(only).map((e) => e.deviceId), ['lab-1', 'lab-2'])
  await assert.rejects(svc.deviceIdsOf('SELECT COUNT() AS n FROM devices'), /must return deviceId/)
})
