/**
 * Rules on what aedes keeps for persistent sessions (clean=false), applied where aedes writes it:
 * - only SUBSCRIBE filters the pipeline granted are stored (aedes stores the whole SUBSCRIBE packet's
 *   list for every granted filter, refused ones included, which then queue messages offline);
 * - the per-session queue bound (`maxQueued`, `whenFull`: drop_new | drop_old, PROTOCOL.md §7)
 *   for sessions that are offline, counted per client; for a cluster node the queue lives in Redis
 *   and the bound is applied there (`shared`, see src/cluster/session-queue.ts), so every node
 *   enqueueing for the client counts against the same bound;
 * - no store round trip on a PUBACK from a clean session: aedes never stores a clean session's
 *   in-flight messages, yet asks the store to clear one on every PUBACK (a LevelDB read per message).
 * Wraps the persistence instance in place, since aedes calls these as its methods.
 */
import type { AedesPersistence } from './aedes-internals.js'

export interface QueueBound {
  maxQueued: number
  whenFull: 'drop_new' | 'drop_old'
}

export interface SessionStoreRules {
  /** Was this filter granted to the client's live session? */
  granted(clientId: string, filter: string): boolean
  /** Is the client connected to this broker now (its queue drains as it acks)? */
  connected(clientId: string): boolean
  /** Undefined: no bound. */
  bound(): QueueBound | undefined
  onDrop(clientId: string, topic: string, whenFull: QueueBound['whenFull']): void
  /** Queues shared by several brokers (a cluster's Redis): the bound is applied where they live. */
  shared?: SharedQueue
}

export interface SharedQueue {
  /**
   * Called after a message was queued for a client not connected here: applies the bound
   * atomically on the client's queue; the topics of the messages dropped (newest or oldest).
   */
  enforce(clientId: string, bound: QueueBound): Promise<string[]>
}

interface Sub {
  clientId: string
  topic: string
  qos: number
}

/** Unused by aedes (its packet ids start at 1): a handle for deleting a never-sent queued message. */
const DROP_ID = 0

export class SessionStore {
  /** Queued-message counts of offline clients (loaded from the store on first need). */
  private readonly counts = new Map<string, number | Promise<number>>()
  readonly dropped = new Map<string, number>()

  constructor(
    private readonly p: AedesPersistence,
    private readonly rules: SessionStoreRules,
  ) {
    const addSubscriptions = p.addSubscriptions.bind(p)
    p.addSubscriptions = (client, subs) => {
      const keep = subs.filter((s) => rules.granted(client.id, s.topic))
      return keep.length === 0 ? Promise.resolve() : addSubscriptions(client, keep)
    }
    const clear = p.outgoingClearMessageId.bind(p)
    p.outgoingClearMessageId = (client, packet) => ((client as { clean?: boolean }).clean === true ? Promise.resolve(undefined) : clear(client, packet))
    const enqueue = p.outgoingEnqueueCombi.bind(p)
    p.outgoingEnqueueCombi = (subs, packet) => this.enqueue(subs as Sub[], packet, enqueue)
  }

  /** The client is back: its queue drains as it acks; count afresh when it next goes away. */
  connected(clientId: string): void {
    this.counts.delete(clientId)
  }

  get droppedTotal(): number {
    let n = 0
    for (const v of this.dropped.values()) n += v
    return n
  }

  private async enqueue(subs: Sub[], packet: unknown, enqueue: AedesPersistence['outgoingEnqueueCombi']): Promise<void> {
    const bound = this.rules.bound()
    if (!bound || subs.length === 0) return enqueue(subs, packet)
    const shared = this.rules.shared
    if (shared) {
      await enqueue(subs, packet)
      for (const sub of subs) {
        if (this.rules.connected(sub.clientId)) continue
        for (const topic of await shared.enforce(sub.clientId, bound)) this.drop(sub.clientId, topic, bound.whenFull)
      }
      return
    }
    const keep: Sub[] = []
    const dropOld: string[] = []
    for (const sub of subs) {
      if (this.rules.connected(sub.clientId)) {
        keep.push(sub)
        continue
      }
      const n = await this.count(sub.clientId)
      if (n < bound.maxQueued) {
        this.counts.set(sub.clientId, n + 1)
        keep.push(sub)
      } else if (bound.whenFull === 'drop_old') {
        keep.push(sub)
        dropOld.push(sub.clientId)
      } else {
        this.drop(sub.clientId, (packet as { topic: string }).topic, 'drop_new')
      }
    }
    if (keep.length > 0) await enqueue(keep, packet)
    for (const clientId of dropOld) await this.dropOldest(clientId)
  }

  private count(clientId: string): number | Promise<number> {
    const known = this.counts.get(clientId)
    if (known !== undefined) return known
    const loading = (async () => {
      let n = 0
      for await (const _ of this.p.outgoingStream({ id: clientId })) n++
      return n
    })()
    this.counts.set(clientId, loading)
    return loading
  }

  private async dropOldest(clientId: string): Promise<void> {
    const client = { id: clientId }
    for await (const oldest of this.p.outgoingStream(client)) {
      const packet = oldest as { topic: string; messageId?: number }
      if (!packet.messageId) await this.p.outgoingUpdate(client, { ...packet, messageId: DROP_ID })
      await this.p.outgoingClearMessageId(client, { messageId: packet.messageId || DROP_ID })
      this.drop(clientId, packet.topic, 'drop_old')
      return
    }
  }

  private drop(clientId: string, topic: string, whenFull: QueueBound['whenFull']): void {
    this.dropped.set(clientId, (this.dropped.get(clientId) ?? 0) + 1)
    this.rules.onDrop(clientId, topic, whenFull)
  }
}
