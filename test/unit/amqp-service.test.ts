/**
 * IoT Hub's service AMQP addresses (src/broker/amqp-service.ts) with a raw rhea client on the plain
 * AMQP port of an in-process hub: `/messages/devicebound` needs ServiceConnect, accepts a message for
 * a device (AMQP uuid / value bodies mapped to IoT Hub's forms) and rejects bad ones with the IoT
 * Hub conditions; `/messages/serviceBound/feedback` redelivers a released batch and drops an accepted
 * one; a message over the hub's maximum size closes the connection; AMQP over WebSockets on
 * `/$servicebus/websocket` of the REST port reaches the same listener.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, test } from 'node:test'

import rhea, { type Connection, type Delivery, type EventContext, type Message, type Receiver, type Sender } from 'rhea'
import WebSocket from 'ws'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { parsePropertyBag } from '../../src/iothub/index.js'
import { openAmqp, putToken, serviceToken, type WsDetails } from '../helpers/amqp.js'
import { connect, nextMessage, subscribeOk } from '../helpers/mqtt.js'

let hub: Hub

before(async () => {
  hub = await startHub({ ports: { mqtt: 0, mqtts: null, rest: 0, amqp: 0 }, settings: { maxMessageSize: 8 * 1024 } })
  await hub.createDevice('d1')
})
after(() => hub?.close())

/** A connection (plain TCP, or the given WebSocket) holding `policy`'s token. */
async function authed(policy: string, details?: WsDetails): Promise<Connection> {
  const conn = await openAmqp(hub, details)
  assert.equal((await putToken(conn, hub, serviceToken(hub, policy)))['status-code'], 200)
  return conn
}

/** Sends on `sender` and resolves with the outcome: 'accepted' or the rejection's condition. */
function outcome(sender: Sender, msg: Message): Promise<string> {
  return new Promise((resolve) => {
    const d = sender.send(msg)
    const on = (kind: string) => (ctx: EventContext) => {
      if (ctx.delivery !== d) return
      resolve(kind === 'accepted' ? 'accepted' : String((ctx.delivery?.remote_state as { error?: { condition?: string } } | undefined)?.error?.condition))
    }
    sender.on('accepted', on('accepted'))
    sender.on('rejected', on('rejected'))
  })
}

test('/messages/devicebound: refused without ServiceConnect; accepted for a device; bad messages rejected with IoT Hub conditions', async () => {
  const reader = await authed('registryRead')
  try {
    const s = reader.open_sender({ target: { address: '/messages/devicebound' } })
    const [ctx] = (await once(s, 'sender_error')) as [EventContext]
    assert.equal((ctx.sender?.error as { condition?: string } | undefined)?.condition, 'amqp:unauthorized-access')
  } finally {
    reader.close()
  }

  const dev = await connect({ port: hub.ports.mqtt as number, clientId: 'd1', password: await hub.sas('d1') })
  const conn = await authed('service')
  try {
    await subscribeOk(dev, 'devices/d1/messages/devicebound/#', 1)
    const sender = conn.open_sender({ target: { address: '/messages/devicebound' } })
    await once(sender, 'sendable')
    const uuid = '6ba7b810-9dad-11d1-80b4-00c04fd430c8'
    const got = nextMessage(dev)
    const ok = await outcome(sender, {
      to: '/devices/d1/messages/devicebound',
      message_id: rhea.types.wrap_uuid(rhea.string_to_uuid(uuid)) as unknown as string,
      correlation_id: 42 as unknown as string,
      content_type: 'application/json',
      application_properties: { 'iothub-ack': 'none', temp: 21.5, flag: true },
      body: { hello: 'value section' },
    })
    assert.equal(ok, 'accepted')
    const m = await got
    assert.deepEqual(JSON.parse(m.payload.toString()), { hello: 'value section' })
    const bag = parsePropertyBag(m.topic.slice('devices/d1/messages/devicebound/'.length))
    assert.equal(bag.systemProperties.messageId, uuid)
    assert.equal(bag.systemProperties.correlationId, '42')
    assert.equal(bag.systemProperties.contentType, 'application/json')
    assert.deepEqual(bag.properties, { temp: '21.5', flag: 'true' })

    assert.equal(await outcome(sender, { to: '/devices/ghost/messages/devicebound', body: 'x' }), 'amqp:not-found')
    assert.equal(await outcome(sender, { to: '/somewhere/else', body: 'x' }), 'com.microsoft:argument-error')
    assert.equal(await outcome(sender, { body: 'no to at all' }), 'com.microsoft:argument-error')
    assert.equal(await outcome(sender, { to: '/devices/%E0%A4%A/messages/devicebound', body: 'x' }), 'com.microsoft:argument-error')
    // Fits a frame, over the hub's 8 KiB message limit: rejected, the link stays.
    assert.equal(await outcome(sender, { to: '/devices/d1/messages/devicebound', body: Buffer.alloc(9000, 1) }), 'amqp:link:message-size-exceeded')
  } finally {
    conn.close()
    await dev.endAsync()
  }
})

test('/messages/serviceBound/feedback: a released batch comes again, an accepted one is gone', async () => {
  hub.broker.iothub.feedback.add({ messageId: 'fb-a', deviceId: 'd1', deviceGenerationId: 'g' }, 'Success')
  const conn = await authed('service')
  try {
    const r: Receiver = conn.open_receiver({ source: { address: '/messages/serviceBound/feedback' }, autoaccept: false, credit_window: 0 })
    const next = () => (once(r, 'message') as Promise<[EventContext]>).then(([ctx]) => ctx)
    const first = next()
    r.add_credit(1)
    const a = await first
    assert.equal(a.message?.content_type, 'application/vnd.microsoft.iothub.feedback.json')
    const records = JSON.parse(Buffer.from((a.message?.body as { content: Buffer }).content).toString()) as { originalMessageId: string }[]
    assert.deepEqual(records.map((x) => x.originalMessageId), ['fb-a'])
    const second = next()
    ;(a.delivery as Delivery).release()
    r.add_credit(1)
    const b = await second
    assert.deepEqual((JSON.parse(Buffer.from((b.message?.body as { content: Buffer }).content).toString()) as { originalMessageId: string }[]).map((x) => x.originalMessageId), ['fb-a'])
    ;(b.delivery as Delivery).accept()
    // Accepted: gone once the hub has the disposition.
    await new Promise<void>((resolve) => {
      const check = () => (hub.broker.iothub.feedback.depth === 0 && hub.broker.iothub.feedback.take() === undefined ? resolve() : setImmediate(check))
      check()
    })
  } finally {
    conn.close()
  }
})

test('a message larger than the hub maximum, split over frames, closes the connection; the hub keeps serving', async () => {
  const conn = await authed('service')
  const sender = conn.open_sender({ target: { address: '/messages/devicebound' } })
  await once(sender, 'sendable')
  const gone = once(conn, 'disconnected')
  sender.send({ to: '/devices/d1/messages/devicebound', body: Buffer.alloc(200 * 1024, 2) })
  await gone
  const again = await authed('service')
  again.close()
})

test('AMQP over WebSockets at /$servicebus/websocket on the REST port (AMQPWSB10)', async () => {
  const ws = rhea.websocket_connect(WebSocket as never)
  const details = ws(`wss://localhost:${hub.ports.rest}/$servicebus/websocket`, ['AMQPWSB10'], { ca: hub.caPem })
  const conn = await authed('service', details)
  try {
    const sender = conn.open_sender({ target: { address: '/messages/devicebound' } })
    await once(sender, 'sendable')
    assert.equal(await outcome(sender, { to: '/devices/ghost/messages/devicebound', body: 'x' }), 'amqp:not-found')
  } finally {
    conn.close()
  }
})

test('feedback Success: on send to a QoS 0 subscriber, on the PUBACK of a persistent session (queued while offline)', async () => {
  await hub.createDevice('q0')
  await hub.createDevice('persist')
  const fb = hub.broker.iothub.feedback
  const taken = (id: string) => {
    const b = fb.take((r) => r.originalMessageId === id)
    if (b) fb.settle(b.lockToken, 'accept')
    return b?.records.map((r) => r.statusCode)
  }
  const q0 = await connect({ port: hub.ports.mqtt as number, clientId: 'q0', password: await hub.sas('q0') })
  try {
    await subscribeOk(q0, 'devices/q0/messages/devicebound/#', 0)
    const got = nextMessage(q0)
    await hub.broker.iothub.sendC2d('q0', Buffer.from('a'), {}, { messageId: 'q0-1' }, { ack: 'positive' })
    assert.equal((await got).qos, 0)
    assert.deepEqual(taken('q0-1'), ['Success'])
  } finally {
    await q0.endAsync()
  }

  // A persistent session subscribed at QoS 1, then offline: aedes keeps the message; its PUBACK on reconnect completes it.
  const opts = { port: hub.ports.mqtt as number, clientId: 'persist', password: await hub.sas('persist'), clean: false }
  const first = await connect(opts)
  await subscribeOk(first, 'devices/persist/messages/devicebound/#', 1)
  await first.endAsync()
  const r = await hub.broker.iothub.sendC2d('persist', Buffer.from('b'), {}, { messageId: 'p-1' }, { ack: 'full' })
  assert.equal(r.queued, false)
  assert.equal(taken('p-1'), undefined)
  // The device's PUBACK (MQTT.js sends it on receipt) is what adds the record.
  const recorded = once(fb.events, 'available')
  const back = await connect(opts)
  try {
    await recorded
    assert.deepEqual(taken('p-1'), ['Success'])
  } finally {
    await back.endAsync()
  }
})
