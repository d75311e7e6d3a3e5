/**
 * The AMQP listener (src/transports/amqp.ts) with a raw rhea client on the plain AMQP port of an
 * in-process hub: CBS put-token answers (200, 401 for a bad token, 400 for a wrong operation), links
 * to unknown addresses refused with amqp:not-found, links without the right with
 * amqp:unauthorized-access, oversize frames and garbage bytes close the connection while the hub
 * keeps serving.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect as netConnect } from 'node:net'
import { after, before, test } from 'node:test'

import rhea, { type Connection, type EventContext, type Message } from 'rhea'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { buildSasToken } from '../../src/sas/index.js'

let hub: Hub
let port: number

before(async () => {
  hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: null, amqp: 0 } })
  port = hub.ports.amqp as number
  // A test route: readable by RegistryRead holders, so the `service` policy (ServiceConnect only) lacks it.
  hub.broker.amqp.route({
    name: 'test-read',
    matches: (a) => a === '/test/registry',
    right: 'RegistryRead',
    onSender: (link) => {
      link.send({ body: 'hello' })
    },
  })
})
after(() => hub?.close())

function serviceToken(policyName: string, opts: { key?: string; resource?: string } = {}): string {
  const policy = hub.context.hub.policies.find((p) => p.name === policyName)
  assert.ok(policy)
  return buildSasToken({ resource: opts.resource ?? hub.hostName, key: opts.key ?? policy.primaryKey, policyName, durationSecs: 600 })
}

async function open(): Promise<Connection> {
  const conn = rhea.create_container().connect({ host: '127.0.0.1', port, hostname: hub.hostName, reconnect: false })
  conn.on('error', () => undefined)
  conn.on('disconnected', () => undefined)
  await once(conn, 'connection_open')
  return conn
}

/** One CBS request/response on a fresh pair of $cbs links. */
async function putToken(conn: Connection, token: string, props: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const receiver = conn.open_receiver({ source: { address: '$cbs' }, target: { address: 'cbs-reply' } })
  await once(receiver, 'receiver_open')
  const sender = conn.open_sender({ target: { address: '$cbs' } })
  await once(sender, 'sendable')
  const id = `put-${Math.random()}`
  const reply = new Promise<Message>((resolve) => receiver.on('message', (ctx: EventContext) => ctx.message?.correlation_id === id && resolve(ctx.message)))
  sender.send({ message_id: id, reply_to: 'cbs-reply', body: token, application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: hub.hostName, ...props } })
  const m = await reply
  receiver.close()
  sender.close()
  return m.application_properties as Record<string, unknown>
}

/** Attaches a receiver on `address`; resolves with the detach error condition, or 'open' once attached for good. */
async function attachOutcome(conn: Connection, address: string): Promise<string> {
  const r = conn.open_receiver({ source: { address } })
  return new Promise((resolve) => {
    r.on('receiver_error', (ctx: EventContext) => resolve(String((ctx.receiver?.error as { condition?: string } | undefined)?.condition)))
    r.on('message', () => resolve('open'))
  })
}

test('put-token: a valid service token is answered 200, a wrong key 401, a wrong operation 400', async () => {
  const conn = await open()
  try {
    assert.equal((await putToken(conn, serviceToken('iothubowner')))['status-code'], 200)
    const bad = await putToken(conn, serviceToken('iothubowner', { key: Buffer.alloc(32, 7).toString('base64') }))
    assert.equal(bad['status-code'], 401)
    assert.match(String(bad['status-description']), /signature/)
    const noPolicy = await putToken(conn, serviceToken('iothubowner').replace(/&skn=.*$/, ''))
    assert.equal(noPolicy['status-code'], 401)
    assert.equal((await putToken(conn, serviceToken('iothubowner'), { operation: 'delete-token' }))['status-code'], 400)
    assert.equal((await putToken(conn, 'not a token'))['status-code'], 401)
    // An Event Hubs style audience (sb://<host>/<entity>) signs a resource under the hub's host.
    assert.equal((await putToken(conn, serviceToken('service', { resource: `sb://${hub.hostName}/edgemq` })))['status-code'], 200)
    assert.equal((await putToken(conn, serviceToken('service', { resource: 'elsewhere.example.com' })))['status-code'], 401)
  } finally {
    conn.close()
  }
})

test('links: unknown address → amqp:not-found; no token or a token without the right → amqp:unauthorized-access; with it the route serves', async () => {
  const conn = await open()
  try {
    assert.equal(await attachOutcome(conn, '/no/such/address'), 'amqp:not-found')
    assert.equal(await attachOutcome(conn, '/test/registry'), 'amqp:unauthorized-access')
    assert.equal((await putToken(conn, serviceToken('service')))['status-code'], 200)
    assert.equal(await attachOutcome(conn, '/test/registry'), 'amqp:unauthorized-access')
    assert.equal((await putToken(conn, serviceToken('registryRead')))['status-code'], 200)
    assert.equal(await attachOutcome(conn, '/test/registry'), 'open')
  } finally {
    conn.close()
  }
})

async function rawBytes(bytes: Buffer): Promise<void> {
  const s = netConnect(port, '127.0.0.1')
  s.on('error', () => undefined)
  s.resume() // what the hub answers (its own header) is read, so 'close' can come
  await once(s, 'connect')
  s.write(bytes)
  await once(s, 'close')
}

test('garbage, a wrong protocol header and an oversize frame close the connection; the hub keeps serving', async () => {
   await rawBytes(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))
  await rawBytes(Buffer.concat([Buffer.from('AMQP'), Buffer.from([9, 1, 0, 0]), Buffer.alloc(64, 0xff)]))
  // A valid AMQP header, then a frame header announcing 1 GiB: closed before any of it is held.
  const frame = Buffer.alloc(8)
  frame.writeUInt32BE(1024 * 1024 * 1024, 0)
  frame.writeUInt8(2, 4)
  await rawBytes(Buffer.concat([Buffer.from('AMQP'), Buffer.from([0, 1, 0, 0]), frame, Buffer.alloc(70_000, 1)]))
  const conn = await open()
  try {
    assert.equal((await putToken(conn, serviceToken('iothubowner')))['status-code'], 200)
  } finally {
    conn.close()
  }
  assert.ok(hub.broker.amqp.refused >= 2, `refused ${hub.broker.amqp.refused}`)
})
