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
  /** Stored (clean=false) subscriptions with QoS > 0 whose filter matches `topic`. */
  subscriptionsByTopic(topic: string): Promise<{ clientId: string; topic: string; qos: number }[]>
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
