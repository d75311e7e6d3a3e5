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

import type { Connection, EventContext } from 'rhea'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { startTestHub } from '../helpers/hub.js'
import { openAmqp, putToken as cbsPutToken, serviceToken as tokenOf } from '../helpers/amqp.js'

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

const serviceToken = (policyName: string, opts: { key?: string; resource?: string } = {}) => tokenOf(hub, policyName, opts)
const open = () => openAmqp(hub)
const putToken = (conn: Connection, token: string, props: Record<string, string> = {}) => cbsPutToken(conn, hub, token, props)

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
    // Event Hubs clients sign with the key's text (not its base64 bytes), and may name the port.
    const textKey = Buffer.from(hub.context.hub.policies.find((p) => p.name === 'service')?.primaryKey ?? '', 'utf8').toString('base64')
    assert.equal((await putToken(conn, serviceToken('service', { resource: `sb://${hub.hostName}:5671/edgemq/$management`, key: textKey })))['status-code'], 200)
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

test('a connection holding more than 256 links is closed (amqp:resource-limit-exceeded)', async () => {
  const conn = await open()
  const closed = new Promise<string>((resolve) => conn.on('connection_error', (ctx: EventContext) => resolve(String((ctx.connection.error as { condition?: string } | undefined)?.condition))))
  for (let i = 0; i < 300; i++) conn.open_sender({ target: { address: '$cbs' } })
  assert.equal(await closed, 'amqp:resource-limit-exceeded')
  const again = await open()
  again.close()
})

test('AMQP connections past maxConnections are closed on accept; once one goes, the next is let in', async () => {
  const small = await startTestHub({ ports: { mqtt: null, mqtts: null, rest: null, amqp: 0 }, settings: { maxConnections: 2 }, logLevel: 'debug' })
  try {
    const a = await openAmqp(small.hub)
    const b = await openAmqp(small.hub)
    const s = netConnect(small.hub.ports.amqp as number, '127.0.0.1')
    s.on('error', () => undefined)
    s.resume()
    await once(s, 'close')
    assert.equal(small.hub.broker.amqp.refused, 1)
    const mark = small.mark()
    a.close()
    await small.waitForLog(/"connections":1,.*"msg":"AMQP socket closed"/, { since: mark })
    const c = await openAmqp(small.hub)
    for (const conn of [b, c]) conn.close()
  } finally {
    await small.stop()
  }
})
