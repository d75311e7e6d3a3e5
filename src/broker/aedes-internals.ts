/**
 * The one place edgemq reaches past aedes' public API. Checked against aedes 1.2.0
 * (node_modules/aedes/lib/client.js, lib/handlers/subscribe.js, aedes.js); re-check these
 * accessors when upgrading aedes.
 */
import type { EventEmitter } from 'node:events'

import type { Aedes, Client } from 'aedes'

export const AEDES_VERSION_CHECKED = '1.2.0'

/** The subset of the aedes persistence API edgemq calls (aedes-persistence's contract). */
export interface AedesPersistence {
  addSubscriptions(client: { id: string }, subs: { topic: string; qos: number }[]): Promise<void>
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<void>
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string; qos: number }[] | null>
  outgoingEnqueueCombi(subs: { clientId: string; topic: string; qos: number }[], packet: unknown): Promise<void>
  outgoingStream(client: { id: string }): AsyncIterable<unknown>
  outgoingUpdate(client: { id: string }, packet: unknown): Promise<void>
  outgoingClearMessageId(client: { id: string }, packet: { messageId: number }): Promise<unknown>
  countOffline?(): Promise<{ subsCount: number; clientsCount: number }>
}

/** The client's MQTT packet parser: listeners prepended here see a packet before aedes does. */
export function packetParser(client: Client): EventEmitter | undefined {
  return (client as unknown as { _parser?: EventEmitter })._parser
}

/** Set once authenticate() succeeded, before the CONNACK is written (`connected` comes later). */
export function authenticated(client: Client): boolean {
  return (client as unknown as { _authorized?: boolean })._authorized === true
}

/** The client's live subscriptions, keyed by filter (as granted, after any rewrite). */
export function liveSubscriptions(client: Client): Record<string, { qos: number }> {
  return (client as unknown as { subscriptions?: Record<string, { qos: number }> }).subscriptions ?? {}
}

export function brokerPersistence(aedes: Aedes): AedesPersistence {
  return (aedes as unknown as { persistence: AedesPersistence }).persistence
}

/** The client connected to this aedes instance under `clientId`, if any. */
export function connectedClient(aedes: Aedes, clientId: string): Client | undefined {
  return (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[clientId]
}

/**
 * Puts `intercept` between the connection and the client's MQTT parser (aedes reads the socket
 * in client.js `nextBatch` and hands each chunk to `_parser.parse`).
 */
export function interceptParserInput(client: Client, intercept: (buf: Buffer, parse: (buf: Buffer) => void) => void): void {
  const parser = (client as unknown as { _parser: { parse(buf: Buffer): unknown } })._parser
  const parse = parser.parse.bind(parser)
  parser.parse = (buf: Buffer) => intercept(buf, (b) => void parse(b))
}

type Deliver = (packet: unknown, cb: () => void) => void

/**
 * Wraps the client's QoS 0 delivery (`deliver0`, which aedes binds to QoS 0 subscriptions and
 * calls for QoS 0 packets). `wrap` gets aedes' own delivery and returns the one to use instead.
 * Must run right after `aedes.handle()`, before any subscription captures the original.
 */
export function wrapQoS0Delivery(client: Client, wrap: (deliver: Deliver) => Deliver): void {
  const c = client as unknown as { deliver0: Deliver }
  c.deliver0 = wrap(c.deliver0)
}
