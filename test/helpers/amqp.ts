/**
 * A raw rhea client for tests of the hub's AMQP endpoint: open a connection to `startHub()`'s plain
 * AMQP port (or over WebSockets), sign a service token with one of its policies, and do one CBS
 * `put-token` round trip.
 *
 *   const conn = await openAmqp(hub)
 *   assert.equal((await putToken(conn, hub, serviceToken(hub, 'service')))['status-code'], 200)
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'

import rhea, { type Connection, type ConnectionOptions, type EventContext, type Message } from 'rhea'

import type { Hub } from '../../src/emulator/index.js'
import { buildSasToken } from '../../src/sas/index.js'

/** A service SAS signed with `policyName`'s primary key (or `key`), for `resource` (default the hub host name). */
export function serviceToken(hub: Hub, policyName: string, opts: { key?: string; resource?: string } = {}): string {
  const policy = hub.context.hub.policies.find((p) => p.name === policyName)
  assert.ok(policy, `no policy ${policyName}`)
  return buildSasToken({ resource: opts.resource ?? hub.hostName, key: opts.key ?? policy.primaryKey, policyName, durationSecs: 600 })
}

/** rhea's connection_details for AMQP over WebSockets (`websocket_connect(WebSocket)(url, protocols, options)`). */
export type WsDetails = ReturnType<ReturnType<typeof rhea.websocket_connect>>

/** An open connection to the hub's plain AMQP port (or `details`' WebSocket); its errors are the test's to assert. */
export async function openAmqp(hub: Hub, details?: WsDetails): Promise<Connection> {
  const options = { host: '127.0.0.1', port: hub.ports.amqp, hostname: hub.hostName, reconnect: false, ...(details ? { connection_details: details } : {}) }
  const conn = rhea.create_container().connect(options as ConnectionOptions)
  conn.on('error', () => undefined)
  conn.on('disconnected', () => undefined)
  await once(conn, 'connection_open')
  return conn
}

let requests = 0

/** One CBS put-token on a fresh pair of `$cbs` links; resolves with the answer's application properties. */
export async function putToken(conn: Connection, hub: Hub, token: string, props: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const receiver = conn.open_receiver({ source: { address: '$cbs' }, target: { address: 'cbs-reply' } })
  await once(receiver, 'receiver_open')
  const sender = conn.open_sender({ target: { address: '$cbs' } })
  await once(sender, 'sendable')
  const id = `put-${++requests}`
  const reply = new Promise<Message>((resolve) => receiver.on('message', (ctx: EventContext) => ctx.message?.correlation_id === id && resolve(ctx.message)))
  sender.send({ message_id: id, reply_to: 'cbs-reply', body: token, application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: hub.hostName, ...props } })
  const m = await reply
  receiver.close()
  sender.close()
  return m.application_properties as Record<string, unknown>
}
