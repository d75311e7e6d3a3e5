/**
 * Issue 17: C2D to a device that cannot take it now is not dropped. As IoT Hub, it waits in the
 * device's C2D queue (max 50, TTL 1 h or $.exp) and is delivered on the device's next SUBSCRIBE to
 * devices/<id>/messages/devicebound/#, whatever its MQTT session. In process (startHub), real
 * MQTT.js devices.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { QueueFullError } from '../../src/errors.js'
import { watchFeedback } from '../../src/service/feedback-watch.js'
import { c2dSystemProperties, HubService } from '../../src/service/hub-service.js'
import { serviceToken } from '../helpers/amqp.js'
import { tempHome } from '../helpers/cli.js'
import { collect, connect, iothubUsername } from '../helpers/mqtt.js'

let hub: Hub
const C2D = (id: string) => `devices/${id}/messages/devicebound/#`

async function device(id: string, opts: { clean?: boolean } = {}) {
  return connect({ port: hub.ports.mqtt as number, clientId: id, password: await hub.sas(id), username: iothubUsername(id, hub.hostName), clean: opts.clean })
}

before(async () => {
  hub = await startHub({ ports: { mqtts: null, rest: null } })
  for (const id of ['offline', 'unsubscribed', 'expiring', 'full', 'online', 'persistent']) await hub.createDevice(id)
})
after(() => hub?.close())

test('a device that never connected gets its C2D on its first subscribe (clean session), with its properties', async () => {
  const r = await hub.broker.iothub.sendC2d('offline', Buffer.from('while you were away'), { priority: 'high' })
  assert.equal(r.queued, true)
  assert.equal(hub.broker.iothub.c2d.depth('offline'), 1)
  const d = await device('offline')
  try {
    const got = collect(d, 1)
    await d.subscribeAsync(C2D('offline'), { qos: 1 })
    const [m] = await got
    assert.equal(m.payload.toString(), 'while you were away')
    assert.match(m.topic, /^devices\/offline\/messages\/devicebound\/.*priority=high/)
    assert.match(m.topic, new RegExp(`%24\\.mid=${r.messageId}`))
    assert.equal(m.qos, 1)
    assert.equal(hub.broker.iothub.c2d.depth('offline'), 0, 'delivered once, then gone from the queue')
  } finally {
    await d.endAsync()
  }
})

test('a connected device that has not subscribed yet: queued, delivered when it subscribes', async () => {
  const d = await device('unsubscribed')
  try {
    const r = await hub.broker.iothub.sendC2d('unsubscribed', Buffer.from('first'))
    await hub.broker.iothub.sendC2d('unsubscribed', Buffer.from('second'))
    assert.equal(r.queued, true)
    const got = collect(d, 2)
    await d.subscribeAsync(C2D('unsubscribed'), { qos: 1 })
    assert.deepEqual((await got).map((m) => m.payload.toString()), ['first', 'second'])
  } finally {
    await d.endAsync()
  }
})

test('expired messages ($.exp in the past) are not delivered; live ones are', async () => {
  await hub.broker.iothub.sendC2d('expiring', Buffer.from('stale'), {}, { expiryTimeUtc: new Date(Date.now() - 1000).toISOString() })
  await hub.broker.iothub.sendC2d('expiring', Buffer.from('fresh'))
  const d = await device('expiring')
  try {
    // QoS 1, one connection, queue order: had "stale" been sent it would arrive before "fresh".
    const got = collect(d, 1)
    await d.subscribeAsync(C2D('expiring'), { qos: 1 })
    assert.deepEqual((await got).map((m) => m.payload.toString()), ['fresh'])
    assert.equal(hub.broker.iothub.c2d.expired, 1, 'the stale message was dropped as expired')
  } finally {
    await d.endAsync()
  }
})

test('the 51st queued message is refused (DeviceMaximumQueueDepthExceeded)', async () => {
  for (let i = 0; i < 50; i++) await hub.broker.iothub.sendC2d('full', Buffer.from(`m${i}`))
  await assert.rejects(hub.broker.iothub.sendC2d('full', Buffer.from('one too many')), QueueFullError)
  assert.equal(hub.broker.iothub.c2d.depth('full'), 50)
  const d = await device('full')
  try {
    const got = collect(d, 50)
    await d.subscribeAsync(C2D('full'), { qos: 1 })
    const msgs = await got
    assert.deepEqual(msgs.map((m) => m.payload.toString()), Array.from({ length: 50 }, (_, i) => `m${i}`))
  } finally {
    await d.endAsync()
  }
})

test('a subscribed device gets the message at once (not queued)', async () => {
  const d = await device('online')
  try {
    await d.subscribeAsync(C2D('online'), { qos: 1 })
    const got = collect(d, 1)
    const r = await hub.broker.iothub.sendC2d('online', Buffer.from('now'))
    assert.equal(r.queued, false)
    assert.equal((await got)[0].payload.toString(), 'now')
  } finally {
    await d.endAsync()
  }
})

test('an offline persistent session that holds the subscription keeps the message (not queued), as before', async () => {
  const first = await device('persistent', { clean: false })
  await first.subscribeAsync(C2D('persistent'), { qos: 1 })
  await first.endAsync()
  const r = await hub.broker.iothub.sendC2d('persistent', Buffer.from('kept by the session'))
  assert.equal(r.queued, false)
  let got: Promise<{ payload: Buffer }[]> | undefined
  const again = await connect({
    port: hub.ports.mqtt as number,
    clientId: 'persistent',
    password: await hub.sas('persistent'),
    username: iothubUsername('persistent', hub.hostName),
    clean: false,
    beforeConnect: (c) => (got = collect(c, 1)),
  })
  try {
    assert.equal((await got)?.[0].payload.toString(), 'kept by the session')
  } finally {
    await again.endAsync()
  }
})

test('purge (az iot device c2d-message purge, DELETE /devices/{id}/commands): the queue is emptied, nothing is delivered later; rights and unknown devices refused', async () => {
  await hub.createDevice('purged')
  for (const s of ['a', 'b', 'c']) await hub.broker.iothub.sendC2d('purged', Buffer.from(s))
  const del = (id: string, policy: string) =>
    fetch(`http://127.0.0.1:${hub.ports.control}/devices/${id}/commands`, { method: 'DELETE', headers: { authorization: serviceToken(hub, policy) } })
  assert.equal((await del('purged', 'registryRead')).status, 401, 'RegistryRead has no ServiceConnect')
  assert.equal(hub.broker.iothub.c2d.depth('purged'), 3)
  const r = await del('purged', 'service')
  assert.equal(r.status, 200)
  assert.deepEqual(await r.json(), { deviceId: 'purged', totalMessagesPurged: 3 })
  assert.equal(hub.broker.iothub.c2d.depth('purged'), 0)
  assert.equal((await del('ghost', 'service')).status, 404)

  const d = await device('purged')
  try {
    const got = collect(d, 1, { timeoutMs: 5000 })
    await d.subscribeAsync(C2D('purged'), { qos: 1 })
    await hub.broker.iothub.sendC2d('purged', Buffer.from('after'))
    assert.deepEqual((await got).map((m) => m.payload.toString()), ['after'], 'only what was sent after the purge')
  } finally {
    await d.endAsync()
  }
})

test('az receive/complete/abandon/reject over the control API: the az shape, locks, and the feedback the sender asked for', async () => {
  await hub.createDevice('locker')
  const auth = { authorization: serviceToken(hub, 'service') }
  const base = `http://127.0.0.1:${hub.ports.control}/devices/locker/messages/deviceBound`
  assert.equal((await fetch(base, { headers: auth })).status, 204, 'nothing queued')
  const sent = await hub.broker.iothub.sendC2d('locker', Buffer.from('first'), { color: 'blue' }, { correlationId: 'c1' }, { ack: 'full' })
  await hub.broker.iothub.sendC2d('locker', Buffer.from('second'), {}, {}, { ack: 'full' })

  const r1 = await fetch(`${base}?lockTimeout=30`, { headers: auth })
  assert.equal(r1.status, 200)
  const m1 = (await r1.json()) as { data: string; etag: string; properties: { app: Record<string, string>; system: Record<string, string> } }
  assert.equal(m1.data, 'first')
  assert.deepEqual(m1.properties.app, { color: 'blue' })
  assert.equal(m1.properties.system['iothub-messageid'], sent.messageId)
  assert.equal(m1.properties.system['iothub-correlationid'], 'c1')
  assert.ok(m1.etag)

  const m2 = (await (await fetch(base, { headers: auth })).json()) as { data: string; etag: string }
  assert.equal(m2.data, 'second', 'the first is locked')
  assert.equal((await fetch(`${base}/${m2.etag}/abandon`, { method: 'POST', headers: auth })).status, 200)
  const again = (await (await fetch(base, { headers: auth })).json()) as { data: string; etag: string; properties: { system: Record<string, string> } }
  assert.equal(again.data, 'second', 'abandoned: delivered again')
  assert.equal(again.properties.system['iothub-deliverycount'], '1')

  assert.equal((await fetch(`${base}/${m1.etag}`, { method: 'DELETE', headers: auth })).status, 200, 'complete')
  assert.equal((await fetch(`${base}/${again.etag}?reject`, { method: 'DELETE', headers: auth })).status, 200, 'reject')
  assert.equal((await fetch(`${base}/${again.etag}`, { method: 'DELETE', headers: auth })).status, 412, 'settled already')
  assert.equal(hub.broker.iothub.c2d.depth('locker'), 0)

  const batch = hub.broker.iothub.feedback.take((f) => f.deviceId === 'locker')
  const statuses = (batch?.records ?? []).map((f) => f.statusCode).sort()
  assert.deepEqual(statuses, ['Rejected', 'Success'])
})

test("c2d send's az flags: --mid --cid --uid --ct --ce --expiry reach the queued message's system properties; --wait gets the feedback of that message", async (t) => {
  // The CLI's path: HubService through the broker's control API (an on-disk hub has one to find).
  const onDisk = await startHub({ inMemory: false, home: tempHome(), ports: { mqtt: null, mqtts: null, rest: null } })
  t.after(() => onDisk.close())
  await onDisk.createDevice('flagged')
  const svc = new HubService(onDisk.context)
  const expiry = Date.now() + 600_000
  const sys = c2dSystemProperties({ messageId: 'm-42', correlationId: 'c-7', userId: 'ops', contentType: 'application/json', contentEncoding: 'utf-8', expiry: String(expiry), wait: true, ack: 'full' })
  const sent = await svc.sendC2d('flagged', '{"cmd":"on"}', 'priority=high', { ack: 'full', sys })
  assert.deepEqual(sent, { messageId: 'm-42', queued: true })
  const got = await svc.receiveC2dLocked('flagged', 30)
  assert.ok(got)
  assert.deepEqual(got.properties.app, { priority: 'high' })
  const system = got.properties.system
  assert.equal(system['iothub-messageid'], 'm-42')
  assert.equal(system['iothub-correlationid'], 'c-7')
  assert.equal(system['iothub-userid'], 'ops')
  assert.equal(system['iothub-contenttype'], 'application/json')
  assert.equal(system['iothub-contentencoding'], 'utf-8')
  assert.equal(Date.parse(system['iothub-expiry']), expiry)
  // --wait: the feedback of this message, as soon as the device settles it.
  const waiting = watchFeedback(svc, { deviceId: 'flagged', waitOn: 'm-42', timeoutSecs: 20, onRecord: () => undefined })
  await svc.settleC2d('flagged', got.etag, 'complete')
  assert.deepEqual(await waiting, { found: true, timedOut: false })

  assert.throws(() => c2dSystemProperties({ wait: true }), /--wait needs --ack/)
  assert.throws(() => c2dSystemProperties({ expiry: String(Date.now() - 1000) }), /is in the past/)
  assert.throws(() => c2dSystemProperties({ expiry: 'soon' }), /not milliseconds since the epoch/)
})
