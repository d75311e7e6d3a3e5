// MQTT over WebSockets (issue 18), in process: ws:// on --ws-port and wss:// on the REST port at IoT
// Hub's /$iothub/websocket, with MQTT.js as a browser or the Python SDK with websockets=True would
// use it. Same authentication and policy as TCP; the azure-iot-device MqttWs run is in
// test/e2e/sdk-websocket.test.ts (the SDK always dials 443).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'

import { WebSocket } from 'ws'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { selfSignedDeviceCert } from '../../src/pki/index.js'
import { collect, connect, ConnectRefused, nextMessage, subscribeGranted, subscribeOk, type ConnectOptions } from '../helpers/mqtt.js'

const WS_PATH = '/$iothub/websocket'

async function withHub(t: { after(fn: () => Promise<void>): void }, policy?: Parameters<typeof startHub>[0]): Promise<Hub> {
  const hub = await startHub({ hubName: 'edgemq', ports: { mqtt: 0, mqtts: null, rest: 0, ws: 0 }, ...policy })
  t.after(() => hub.close())
  return hub
}

function overWs(hub: Hub, o: Omit<ConnectOptions, 'port'>, secure = false): ConnectOptions {
  return secure
    ? { ...o, port: hub.ports.rest as number, wsPath: WS_PATH, tls: { ca: hub.caPem, ...o.tls } }
    : { ...o, port: hub.ports.ws as number, wsPath: WS_PATH }
}

for (const secure of [false, true]) {
  const scheme = secure ? 'wss (REST port)' : 'ws (--ws-port)'
  test(`${scheme}: telemetry, twin, direct method and C2D over /$iothub/websocket with a SAS token`, async (t) => {
    const hub = await withHub(t)
    await hub.createDevice('d1')
    const events = hub.events({ deviceId: 'd1' })
    const c = await connect(overWs(hub, { clientId: 'd1', password: await hub.sas('d1') }, secure))
    t.after(() => c.endAsync())

    await c.publishAsync('devices/d1/messages/events/', '{"t":21}', { qos: 1 })
    const ev = (await events.next()).value
    assert.equal(ev?.deviceId, 'd1')
    assert.equal(ev?.payload.toString(), '{"t":21}')

    await subscribeOk(c, ['$iothub/twin/res/#', '$iothub/methods/POST/#', 'devices/d1/messages/devicebound/#'], 1)
    const twinRes = nextMessage(c, (m) => m.topic.startsWith('$iothub/twin/res/200/'))
    await c.publishAsync('$iothub/twin/GET/?$rid=7', '')
    const twin = JSON.parse((await twinRes).payload.toString()) as { desired: { $version: number } }
    assert.equal(typeof twin.desired.$version, 'number')

    c.on('message', (topic) => {
      const m = /^\$iothub\/methods\/POST\/reboot\/\?\$rid=(.+)$/.exec(topic)
      if (m) void c.publishAsync(`$iothub/methods/res/200/?$rid=${m[1]}`, '{"ok":true}')
    })
    const result = await hub.invokeMethod('d1', 'reboot', { delay: 1 }, 5)
    assert.deepEqual(result, { status: 200, payload: { ok: true } })

    const c2d = nextMessage(c, (m) => m.topic.startsWith('devices/d1/messages/devicebound/'))
    await hub.sendC2d('d1', 'hello over websockets')
    assert.equal((await c2d).payload.toString(), 'hello over websockets')
  })
}

test('ws: a bad signature is refused with CONNACK 4 and an unknown device with 5, as on 1883 (PROTOCOL.md §1)', async (t) => {
  const hub = await withHub(t)
  await hub.createDevice('d1')
  const good = await hub.sas('d1')
  const tampered = good.replace(/sig=[^&]+/, 'sig=AAAA')
  await assert.rejects(connect(overWs(hub, { clientId: 'd1', password: tampered })), (e: ConnectRefused) => e.code === 4)
  await assert.rejects(connect(overWs(hub, { clientId: 'nobody', password: good })), (e: ConnectRefused) => e.code === 5)
})

test("ws: the policy holds: a device cannot subscribe to another device's C2D or publish its telemetry", async (t) => {
  const hub = await withHub(t, {
    policy: [
      { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] },
      { identities: ['d1', 'd2'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['shared/#'] }] },
    ],
  })
  await hub.createDevice('d1')
  await hub.createDevice('d2')
  const d1 = await connect(overWs(hub, { clientId: 'd1', password: await hub.sas('d1') }))
  // (no endAsync for d1: the broker ends its connection below, and MQTT.js never settles endAsync then)
  assert.deepEqual(await subscribeGranted(d1, ['devices/d2/messages/devicebound/#', 'shared/x', '#'], 1), [128, 1, 128])

  // d2 sees d1's allowed publish, and never the forged telemetry under d2's name.
  const d2 = await connect(overWs(hub, { clientId: 'd2', password: await hub.sas('d2') }))
  t.after(() => d2.endAsync())
  await subscribeOk(d2, 'shared/#', 1)
  const got = collect(d2, 1)
  await d1.publishAsync('shared/x', 'fine', { qos: 1 })
  assert.equal((await got)[0]?.payload.toString(), 'fine')
  // A publish the policy denies ends the publisher's connection (as on TCP) and reaches no one.
  const events = hub.events({ deviceId: 'd2' })
  const forged = events.next()
  const ended = new Promise<void>((resolve) => d1.once('close', () => resolve()))
  d1.publish('devices/d2/messages/events/', 'forged', { qos: 1 })
  await ended
  const raced = await Promise.race([forged.then(() => 'forged telemetry arrived'), new Promise((r) => setImmediate(() => r('none')))])
  assert.equal(raced, 'none')
})

test('wss: an X.509 device presents its certificate on the REST port and connects without a password', async (t) => {
  const hub = await withHub(t)
  const cert = await selfSignedDeviceCert('x1')
  await hub.createDevice('x1', { auth: 'selfSigned', primaryThumbprint: cert.thumbprintSha256 })
  const c = await connect(overWs(hub, { clientId: 'x1', tls: { ca: hub.caPem, cert: cert.certPem, key: cert.keyPem } }, true))
  t.after(() => c.endAsync())
  const events = hub.events({ deviceId: 'x1' })
  await c.publishAsync('devices/x1/messages/events/', 'x509 over wss', { qos: 1 })
  assert.equal((await events.next()).value?.payload.toString(), 'x509 over wss')
  // Without the certificate and without a password: refused.
  await assert.rejects(connect(overWs(hub, { clientId: 'x1' }, true)), (e: ConnectRefused) => e.code === 5 || e.code === 4)
})

test('ws: other paths get 404, a foreign subprotocol is refused, a plain GET gets 426', async (t) => {
  const hub = await withHub(t)
  const port = hub.ports.ws as number
  const status = (path: string, protocols?: string[]) =>
    new Promise<number | string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols)
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.on('open', () => {
        resolve('open')
        ws.close()
      })
      ws.on('error', (err) => resolve(err.message))
    })
  assert.equal(await status('/somewhere'), 404)
  assert.equal(await status(WS_PATH, ['mqtt']), 'open')
  assert.match(String(await status(WS_PATH, ['amqp'])), /400|subprotocol/i)
  const plain = await new Promise<number>((resolve, reject) =>
    httpRequest({ port, host: '127.0.0.1', path: WS_PATH }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
      .on('error', reject)
      .end(),
  )
  assert.equal(plain, 426)
})

test('ws: the packet guard holds on WebSockets too: a CONNECT claiming 268,435,455 bytes is closed at once', async (t) => {
  const hub = await withHub(t)
  const ws = new WebSocket(`ws://127.0.0.1:${hub.ports.ws}${WS_PATH}`, ['mqtt'])
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  // Fixed header of a CONNECT with the largest remaining length MQTT can encode, and a little body.
  ws.send(Buffer.concat([Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(1024)]))
  const started = Date.now()
  await closed
  assert.ok(Date.now() - started < 5_000, 'closed by the guard, not by the connect timeout')
  assert.equal(hub.broker.status().limits.refused['packet-too-large'], 1)
})
