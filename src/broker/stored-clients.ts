/**
 * No disk work for a client that has nothing on disk (issue 16). aedes asks its persistence, on
 * every CONNECT and close of every client, for the client's stored subscriptions, its queue, its
 * QoS2 dedup entries and its will, and to clear them: on LevelDB that is two range scans, two
 * range deletes and a read per connection, although a clean session that never set a will has
 * none of these. This index knows which client ids may have state on disk (a key scan at startup,
 * then every write that creates state adds the id; ids are never removed, so it errs towards disk
 * work) and answers for every other id without touching the disk.
 */
import type { ClassicLevel } from 'classic-level'

import { EMPTY_OUTGOING, LEVEL_CLIENT_RANGES, emptyOutgoingFastPath, levelKeyClient } from './aedes-internals.js'

type Client = { id: string }
type Fn = (...args: never[]) => unknown

/** The persistence methods wrapped here (aedes-persistence's contract). */
interface Wrapped {
  addSubscriptions: Fn
  outgoingEnqueue: Fn
  outgoingEnqueueCombi: Fn
  outgoingUpdate: Fn
  incomingStorePacket: Fn
  putWill: Fn
  subscriptionsByClient: Fn
  cleanSubscriptions: Fn
  cleanIncoming: Fn
  getWill: Fn
  delWill: Fn
  outgoingStream: Fn
  outgoingClearMessageId: Fn
}

/** Client ids with keys in the store now (read before the broker accepts connections). */
export async function scanStoredClients(db: ClassicLevel<string, Buffer>): Promise<Set<string>> {
  const ids = new Set<string>()
  for (const range of LEVEL_CLIENT_RANGES) {
    for await (const key of db.keys(range)) {
      const id = levelKeyClient(key)
      if (id !== undefined) ids.add(id)
    }
  }
  return ids
}

/** Wraps `persistence` (aedes-persistence-level, or aedes-persistence in memory) in place. */
export function skipStatelessClients(persistence: unknown, stored: Set<string>): void {
  const p = persistence as Record<keyof Wrapped, (...args: unknown[]) => unknown>
  const idOf = (c: unknown) => (c as Client).id
  // Writes that create per-client state: the id joins first, so a read racing the write goes to disk.
  const creates = (name: keyof Wrapped, ids: (args: unknown[]) => string[]) => {
    const orig = p[name].bind(p)
    p[name] = (...args: unknown[]) => {
      for (const id of ids(args)) stored.add(id)
      return orig(...args)
    }
  }
  creates('addSubscriptions', (a) => [idOf(a[0])])
  creates('outgoingEnqueue', (a) => [(a[0] as { clientId: string }).clientId])
  creates('outgoingEnqueueCombi', (a) => ((a[0] as { clientId: string }[] | undefined) ?? []).map((s) => s.clientId))
  creates('outgoingUpdate', (a) => [idOf(a[0])])
  creates('incomingStorePacket', (a) => [idOf(a[0])])
  creates('putWill', (a) => [idOf(a[0])])
  // Reads and deletes of a client with nothing stored: answered here.
  const unless = (name: keyof Wrapped, none: () => unknown) => {
    const orig = p[name].bind(p)
    p[name] = (...args: unknown[]) => (stored.has(idOf(args[0])) ? orig(...args) : none())
  }
  unless('subscriptionsByClient', () => Promise.resolve([]))
  unless('cleanSubscriptions', () => Promise.resolve())
  unless('cleanIncoming', () => Promise.resolve())
  unless('getWill', () => Promise.resolve(undefined))
  unless('delWill', () => Promise.resolve(undefined))
  unless('outgoingClearMessageId', () => Promise.resolve(undefined))
  emptyOutgoingFastPath()
  unless('outgoingStream', () => EMPTY_OUTGOING)
}
