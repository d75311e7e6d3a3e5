/**
 * The official device SDK over MQTT over WebSockets (issue 18): azure-iot-device with
 * azure-iot-device-mqtt's `MqttWs`, unchanged, against an in-process hub. MqttWs always dials
 * wss://<GatewayHostName>:443/$iothub/websocket, so this hub's REST port (which upgrades that path)
 * is 443 and the file runs in the runner's one-at-a-time SDK group.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, test } from 'node:test'

import type { Client as AedesClient, Subscription } from 'aedes'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { Client, Message, MqttWs, type SdkMessage } from '../helpers/device-sdk.js'


let hub: Hub

before(async () => {
  hub = await startHub({ hubName: 'edgemq', ports: { mqtt: null, mqtts: null, rest: 443 } })
  await hub.createDevice('wsdev')
})
after(() => hub?.close())

/** Every filter each client has subscribed to, recorded from before the SDK connects (it subscribes lazily). */
function recordSubscriptions() {
  const seen: string[] = []
  const waiters: { clientId: string; prefix: string; resolve(): void }[] = []
  hub.broker.aedes.on('subscribe', (subs: Subscription[], client: AedesClient) => {
    for (const s of subs) seen.push(`${client?.id} ${s.topic}`)
    for (const w of [...waiters]) if (seen.some((x) => x.startsWith(`${w.clientId} ${w.prefix}`))) w.resolve()
  })
  /** Resolves once `clientId` has subscribed to a filter starting with `prefix`. */
  return (clientId: string, prefix: string) =>
    new Promise<void>((resolve) => {
      if (seen.some((x) => x.startsWith(`${clientId} ${prefix}`))) return resolve()
      waiters.push({ clientId, prefix, resolve })
    })
}

test('azure-iot-device with MqttWs: telemetry, twin, desired patch, direct method and C2D over wss://localhost:443/$iothub/websocket', async () => {
  assert.equal(hub.ports.rest, 443)
  const cs = await hub.deviceConnectionString('wsdev')
  assert.match(cs, /GatewayHostName=localhost/)
  const subscribed = recordSubscriptions()
  const client = Client.fromConnectionString(cs, MqttWs)
  await client.setOptions({ ca: hub.caPem })
  const connected = once(hub.broker.aedes, 'clientReady')
  await client.open()
  const [ready] = (await connected) as [AedesClient]
  assert.equal(ready.id, 'wsdev')
  try {
    const events = hub.events({ deviceId: 'wsdev' })
    const msg = new Message(JSON.stringify({ temperature: 21.5 }))
    msg.properties.add('alert', 'yes')
    await client.sendEvent(msg)
    const ev = (await events.next()).value
    assert.equal(JSON.parse(ev?.payload.toString() ?? '{}').temperature, 21.5)
    assert.equal(ev?.properties.alert, 'yes')

    const twin = await client.getTwin()
    await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: '2.0' }, (err) => (err ? reject(err) : resolve())))
    const shown = await hub.getTwin('wsdev')
    assert.equal((shown.properties.reported as Record<string, unknown>).firmware, '2.0')

    const desired = new Promise<Record<string, unknown>>((resolve) => twin.on('properties.desired', (p) => p.interval === 7 && resolve(p)))
    await subscribed('wsdev', '$iothub/twin/PATCH/properties/desired/')
    await hub.updateTwin('wsdev', { desired: { interval: 7 } })
    assert.equal((await desired).interval, 7)

    const methods = subscribed('wsdev', '$iothub/methods/POST/')
    client.onDeviceMethod!('reboot', (req, res) => void res.send(200, { rebooted: true, got: req.payload }))
    await methods
    assert.deepEqual(await hub.invokeMethod('wsdev', 'reboot', { delay: 3 }, 10), { status: 200, payload: { rebooted: true, got: { delay: 3 } } })

    const c2dSub = subscribed('wsdev', 'devices/wsdev/messages/devicebound/')
    const received = new Promise<SdkMessage>((resolve) => client.on('message', resolve))
    await c2dSub
    await hub.sendC2d('wsdev', 'hello over wss', { color: 'blue' })
    const m = await received
    assert.equal(m.data.toString(), 'hello over wss')
    assert.equal(m.properties.getValue('color'), 'blue')
    await client.complete(m)
  } finally {
    await client.close()
  }
})
