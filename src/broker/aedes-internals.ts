/**
 * The one place edgemq reaches past aedes' public API. Checked against aedes 1.2.0
 * (node_modules/aedes/lib/client.js, lib/handlers/subscribe.js, aedes.js) and
 * aedes-persistence-level 9.2.0 (its key layout); re-check these accessors when upgrading either.
 */
import type { EventEmitter } from 'node:events'
import { syncBuiltinESMExports } from 'node:module'
import stream, { type Duplex, type Writable } from 'node:stream'
import { promisify } from 'node:util'

import type { Aedes, Client } from 'aedes'
import mqttPacket from 'mqtt-packet'

import { batchedDefer } from '../util/defer.js'
import { corkForTick, EMPTY_PAYLOAD, writeFast, writePublish } from './publish-codec.js'

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
 * The client a key of aedes-persistence-level belongs to: every key but `retained:<topic>` is
 * `<kind>:<encodeURIComponent(clientId)>` followed by `:…` or nothing (wills).
 */
export function levelKeyClient(key: string): string | undefined {
  const start = key.indexOf(':')
  if (start < 0 || key.startsWith('retained:')) return undefined
  const end = key.indexOf(':', start + 1)
  try {
    return decodeURIComponent(key.slice(start + 1, end < 0 ? undefined : end))
  } catch {
    return undefined
  }
}

/** Key ranges of aedes-persistence-level that hold per-client state (all but retained messages). */
export const LEVEL_CLIENT_RANGES = [{ lt: 'retained:' }, { gte: 'retained;' }] as const

/**
 * A FIFO with O(1) `shift`: mqemitter (1.x/7.x, checked against node_modules/mqemitter) queues
 * messages past its concurrency in two arrays and takes each with `Array#shift`, which copies the
 * whole array once it is large; a QoS0 flood (fan-in) queues tens of thousands and spent most of
 * its time there (issue 16's profile).
 */
class Fifo<T> {
  private items: (T | undefined)[] = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(x: T): number {
    this.items.push(x)
    return this.length
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const x = this.items[this.head]
    this.items[this.head++] = undefined
    // Drop the consumed prefix now and then, so memory stays proportional to what is queued.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return x
  }
}

/**
 * Swaps an in-process mqemitter's overflow queues for O(1) FIFOs (before any message is queued),
 * and makes its dispatch (`_do`) iterative. mqemitter takes the next queued message from inside
 * the previous one's completion (`released` → `_do` → fastparallel → `released` …), so a run of
 * queued messages whose deliveries finish at once (messages nobody is subscribed to) recursed
 * once per message: a client streaming 2,000 matched and 20,000 unmatched QoS 0 publishes ended
 * the process with "Maximum call stack size exceeded" (plain aedes 1.2.0 too). Here a `_do`
 * called while one runs is queued and run by the outer call, in the same order.
 */
export function fastMqQueues(mq: object): void {
  const q = mq as { _messageQueue?: unknown; _messageCallbacks?: unknown; _do?: (message: unknown, callback: unknown) => unknown }
  if (Array.isArray(q._messageQueue) && Array.isArray(q._messageCallbacks) && q._messageQueue.length === 0) {
    q._messageQueue = new Fifo()
    q._messageCallbacks = new Fifo()
  }
  const run = q._do
  if (typeof run !== 'function') return
  let active = false
  const later = new Fifo<[unknown, unknown]>()
  q._do = function (this: unknown, message: unknown, callback: unknown) {
    if (active) {
      later.push([message, callback])
      return this
    }
    active = true
    try {
      run.call(this, message, callback)
      for (let next = later.shift(); next; next = later.shift()) run.call(this, next[0], next[1])
    } finally {
      active = false
    }
    return this
  }
}

interface TopicMatcher {
  match(topic: string, ctx?: unknown): unknown[]
  add(topic: string, value: unknown): unknown
  remove(topic: string, value?: unknown): unknown
  clear(): unknown
}

/** Matches longer than this (a filter many clients share) are not remembered. */
const MAX_CACHED_MATCHES = 64

/**
 * Remembers an in-process mqemitter's matches per topic (its qlobber `_matcher`, checked against
 * mqemitter 7.x): every message runs `match(topic)`, which splits the topic into words and walks
 * the trie again (~7 % of the broker's CPU in issue 16's fan-in profile), while devices publish
 * to the same few topics over and over. Any add, remove or clear forgets everything; at most
 * `max` topics are kept (then the cache starts over). mqemitter hands the array to fastparallel,
 * which only reads it; qlobber itself returns its trie node's own array when one node matches,
 * so mqemitter never had a fresh array per message either.
 */
export function cacheMqMatches(mq: object, max = 4096): void {
  const m = (mq as { _matcher?: TopicMatcher })._matcher
  if (!m || typeof m.match !== 'function' || typeof m.add !== 'function' || typeof m.remove !== 'function' || typeof m.clear !== 'function') return
  const [match, add, remove, clear] = [m.match.bind(m), m.add.bind(m), m.remove.bind(m), m.clear.bind(m)]
  const cache = new Map<string, unknown[]>()
  m.match = (topic, ctx) => {
    if (ctx !== undefined) return match(topic, ctx)
    let hit = cache.get(topic)
    if (hit === undefined) {
      hit = match(topic)
      // A wide match (a filter thousands of clients share) is not kept: 4,096 of them would hold
      // tens of millions of references, and its delivery costs far more than the match.
      if (hit.length > MAX_CACHED_MATCHES) return hit
      if (cache.size >= max) cache.clear()
      cache.set(topic, hit)
    }
    return hit
  }
  m.add = (topic, value) => {
    cache.clear()
    return add(topic, value)
  }
  m.remove = (topic, value) => {
    cache.clear()
    return value === undefined ? remove(topic) : remove(topic, value)
  }
  m.clear = () => {
    cache.clear()
    return clear()
  }
}

/**
 * Puts `intercept` between the connection and the client's MQTT parser (aedes reads the socket
 * in client.js `nextBatch` and hands each chunk to `_parser.parse`).
 */
export function interceptParserInput(client: Client, intercept: (buf: Buffer, parse: (buf: Buffer) => void, parser: MqttParser) => void): void {
  const parser = (client as unknown as { _parser: MqttParser })._parser
  const parse = parser.parse.bind(parser)
  parser.parse = (buf: Buffer) => intercept(buf, (b) => void parse(b), parser)
}

/** mqtt-packet's parser (parser.js): `error` is set once it failed, `settings.protocolVersion` after a CONNECT. */
export interface MqttParser extends EventEmitter {
  parse(buf: Buffer): unknown
  error: Error | null
  settings: { protocolVersion?: number }
}

type Deliver = (packet: unknown, cb: () => void) => void

/**
 * Wraps the client's QoS 1/2 delivery (`deliverQoS`, bound to QoS > 0 subscriptions at SUBSCRIBE
 * and called by `client.publish`); right after `aedes.handle()` and directDelivery().
 */
export function wrapQoSDelivery(client: Client, wrap: (deliver: Deliver) => Deliver): void {
  const c = client as unknown as { deliverQoS: Deliver }
  c.deliverQoS = wrap(c.deliverQoS)
}

/** Takes the next MQTT packet id exactly as aedes' QoSPacket does (qos-packet.js), so ids never clash. */
export function takePacketId(client: Client): number {
  const c = client as unknown as { _nextId: number }
  const id = c._nextId
  c._nextId = id >= 65535 ? 1 : id + 1
  return id
}

/**
 * aedes publishes a `$SYS/<id>/…` notice on every CONNECT (`new/clients`), close
 * (`disconnect/clients`), SUBSCRIBE and UNSUBSCRIBE (`new/subscribes`, `new/unsubscribes`, a JSON
 * body each), each through the whole publish path (aedes.js `_finishRegisterClient`,
 * `unregisterClient`, handlers/subscribe.js, handlers/unsubscribe.js). In edgemq nothing can hear
 * them: no `$` topic but a client's own IoT Hub responses is ever delivered to a client
 * (pipeline.ts decideForward), the bridge ignores `$` topics, and aedes' own listener
 * (`closeSameClients`) acts only on other brokers' ids. So a single node skips them; a cluster
 * node does not (the other nodes' aedes close a client that connected again elsewhere on them).
 */
export function skipClientNotices(aedes: Aedes): void {
  type Publish = (this: unknown, packet: { topic: string }, client?: unknown, done?: unknown) => void
  const a = aedes as unknown as { id: string; publish: Publish }
  const notices = new Set(['new/clients', 'disconnect/clients', 'new/subscribes', 'new/unsubscribes'].map((s) => `$SYS/${a.id}/${s}`))
  // The prototype's method, called directly: every publish passes here, so no bound function in between.
  const publish = Object.getPrototypeOf(aedes).publish as Publish
  a.publish = function (packet, client, done) {
    // '$' is 36: one comparison for every other publish.
    if (packet.topic.charCodeAt(0) === 36 && notices.has(packet.topic)) {
      const cb = typeof client === 'function' ? client : done
      if (typeof cb === 'function') process.nextTick(cb as () => void)
      return
    }
    publish.call(this, packet, client, done)
  }
}

/**
 * The outgoing queue of a client with nothing stored (stored-clients.ts answers for it): empty,
 * and async-iterable like any outgoing stream (session-store.ts counts queues with `for await`).
 */
export const EMPTY_OUTGOING: AsyncIterable<never> = Object.freeze({
  [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined as never }) }),
})

/** Pipelines skipped (tests check that aedes' own calls come this way). */
export const emptyOutgoingStats = { skipped: 0 }

/**
 * aedes drains a client's stored queue on every CONNECT with
 * `pipeline(persistence.outgoingStream(client), through(fn), done)` (handlers/connect.js
 * `emptyQueue`; client.js `emptyOutgoingQueue`, public API that aedes itself never calls, does
 * the same). For an empty queue that pipeline is most of aedes' per-connection CPU after the
 * socket itself: an AbortController, end-of-stream listeners on both streams, and at the end an
 * abort whose DOMException captures a stack trace (~60 µs of a ~350 µs connect in issue 16's
 * storm profile). When the source is EMPTY_OUTGOING there is nothing to pipe: `done` is called
 * on the next tick, as the pipeline would after both ends finished. Every other pipeline runs
 * unchanged. aedes imports `pipeline` from 'stream' as an ES module, so the builtin's ESM exports
 * are re-synced after the swap.
 */
export function emptyOutgoingFastPath(): void {
  const s = stream as unknown as { pipeline: ((...args: unknown[]) => unknown) & { emptyFastPath?: true } }
  if (s.pipeline.emptyFastPath) return
  const pipeline = s.pipeline
  const patched = function (this: unknown, ...args: unknown[]) {
    if (args[0] === EMPTY_OUTGOING && args.length === 3 && typeof args[2] === 'function') {
      const done = args[2] as (err?: Error) => void
      emptyOutgoingStats.skipped++
      // The transform aedes built is never written to and holds nothing: left to the GC.
      process.nextTick(done)
      return args[1]
    }
    return pipeline.apply(this, args)
  }
  // `util.promisify(stream.pipeline)` must still give the promise version (with its options).
  Object.defineProperty(patched, promisify.custom, { value: (pipeline as unknown as Record<symbol, unknown>)[promisify.custom] })
  s.pipeline = Object.assign(patched, { emptyFastPath: true as const })
  syncBuiltinESMExports()
}

/** Streams whose PUBLISH and PUBACK packets publish-codec.ts writes (edgemq's MQTT connections). */
const FAST_WRITES = Symbol('edgemq.fastWrites')

/** Marks `stream` for fastPacketWrites(). */
export function writeFastTo(stream: object): void {
  ;(stream as Record<symbol, boolean>)[FAST_WRITES] = true
}

type WriteToStream = ((packet: unknown, stream: Writable, opts?: unknown) => boolean) & { cacheNumbers?: boolean; fastWrites?: true }

/**
 * aedes writes every packet with `mqtt.writeToStream(packet, client.conn)` (lib/write.js, no
 * options: MQTT 3.1.1), a property read on mqtt-packet's exports at each call. This puts
 * publish-codec.ts's writeFast in front of it for streams marked by writeFastTo(); every other
 * stream and packet (MQTT.js clients in the same process included) gets mqtt-packet unchanged.
 * `cacheNumbers`, which MQTT.js sets on the function, is passed through.
 */
export function fastPacketWrites(): void {
  const exports = mqttPacket as unknown as { writeToStream: WriteToStream }
  const original = exports.writeToStream
  if (original.fastWrites) return
  const patched: WriteToStream = function (packet, stream, opts) {
    if (opts === undefined && (stream as unknown as Record<symbol, boolean>)[FAST_WRITES] === true) {
      const written = writeFast(packet as Parameters<typeof writeFast>[0], stream)
      if (written !== undefined) return written
    }
    return original(packet, stream, opts)
  }
  Object.defineProperty(patched, 'cacheNumbers', { get: () => original.cacheNumbers, set: (v: boolean) => void (original.cacheNumbers = v) })
  exports.writeToStream = Object.assign(patched, { fastWrites: true as const })
}

/**
 * aedes reads a client's socket again once every packet of its last read is handled
 * (`_parsingBatch` back at 0, client.js nextBatch): that is what holds a publisher back while its
 * QoS 1 deliveries wait for a subscriber's socket to drain. But aedes also calls nextBatch on
 * every 'readable' event, where it counts as one more packet handled, so each chunk that arrived
 * was read anyway: a publisher to a QoS 1 subscriber that stopped reading had the broker buffer
 * 22 MB for it within a second (test/unit/direct-delivery.test.ts), bounded only by the drain
 * timeout. Here 'readable' reads only when nothing of the last read is pending; otherwise the last
 * packet's completion reads on, as aedes intends. Exceptions, where aedes' reading is kept:
 * - A client whose own socket waits for 'drain' is read on: a client that stops reading while its
 *   writes are blocked frees its socket only once the broker takes its input, and its pending
 *   packet may be waiting for exactly that (two such clients publishing QoS 1 to each other, or
 *   one to itself, waited on each other until the drain timeout closed both). Likewise when a
 *   delivery to the client starts waiting for its drain while input of its is unread.
 * - One aedes path never completes (aedes.js DoEnqueues.done, on a store error), so a client whose
 *   handlers made no progress for `stallMs` is read on (a fallback, not the pacing).
 */
export function pacedReads(client: Client, stallMs: number): void {
  const c = client as unknown as { conn: Duplex; _nextBatch: (err?: Error) => void; _parsingBatch: number; waitForDrain(cb: () => void): void }
  const next = c._nextBatch
  c.conn.removeListener('readable', next)
  // Handlers call client._nextBatch when a packet is done (read at each call: handlers.js).
  let progress = 0
  c._nextBatch = (err) => {
    progress++
    next(err)
  }
  // One timer at a time, and only while data waits behind a pending packet.
  let timer: NodeJS.Timeout | undefined
  let armedAt = 0
  const check = () => {
    timer = undefined
    if (c._parsingBatch === 0) return
    if (progress === armedAt) return next()
    arm()
  }
  const arm = () => {
    armedAt = progress
    timer = setTimeout(check, stallMs)
    timer.unref()
  }
  c.conn.once('close', () => clearTimeout(timer))
  // aedes starts the count at 1, for the first read: the first 'readable' takes it.
  let first = true
  c.conn.on('readable', () => {
    if (c._parsingBatch === 0 || first || c.conn.writableNeedDrain) {
      first = false
      next()
    } else if (!timer) arm()
  })
  // A delivery to this client now waits for its drain (aedes' write.js and directDelivery both
  // wait here): its unread input is read on once, from the check phase (not inside the write).
  const waitForDrain = c.waitForDrain
  let readOn = false
  c.waitForDrain = function (cb) {
    waitForDrain.call(this, cb)
    if (readOn) return
    readOn = true
    setImmediate(() => {
      readOn = false
      if (c._parsingBatch > 0 && c.conn.readableLength > 0) next()
    })
  }
}

/** The parts of an aedes Client (1.2.0, lib/client.js) its deliveries use. */
interface DeliveringClient {
  id: string | null
  clean: boolean
  connecting: boolean
  connected: boolean
  errored?: boolean
  duplicates: Record<string, number>
  subscriptions: Record<string, { qos?: number } | undefined>
  conn: Writable
  broker: { authorizeForward(client: unknown, packet: ForwardPacket): ForwardPacket | null | undefined | false }
  deliver0: Deliver
  deliverQoS: Deliver
  waitForDrain(cb: () => void): void
  _onError(err?: Error | null): void
}

/** A packet on its way to a subscriber (aedes-packet's Packet; `nl` set by the subscription). */
export interface ForwardPacket {
  cmd?: string
  topic: string
  payload?: Buffer | string
  qos?: number
  dup?: boolean
  retain?: boolean
  messageId?: number
  clientId?: string
  nl?: boolean
  brokerId?: string
  brokerCounter?: number
}

export interface DeliveryOptions {
  /** Runs a client's writes later, off the current call stack, in order (aedes: one setImmediate per delivery). */
  deferWrite(cb: () => void): void
  /** The bytes this QoS 0 delivery will take, or -1 to drop it (a subscriber that does not read). */
  admit(packet: ForwardPacket): number
  /** The QoS 0 delivery admitted with `size` is in the socket's buffer now, or failed. */
  sent(size: number): void
}

/**
 * Replaces the client's deliveries (`deliver0`, which aedes binds to QoS 0 subscriptions and calls
 * for QoS 0 packets, and `deliverQoS` for QoS 1/2 to a clean session) with aedes' own steps, less
 * what they cost per delivery (issue 16's fan-in profiles).
 * - The checks are aedes' (client.js deliverQoS0/deliverQoS): skip a no-local echo, drop a
 *   duplicate seen over the cluster bus (`dedupe`), ask `authorizeForward`; QoS 1/2 takes the next
 *   packet id (or keeps the one a wrapper set) and is downgraded to the subscription's QoS as
 *   QoSPacket and deliverQoS do.
 * - What goes: aedes copies every delivery into a new Packet from its own setImmediate only to
 *   write it (write.js), then calls back from another. Here the write goes straight from the
 *   packet's fields (publish-codec.ts), a client's deliveries of one batch, both QoS in order, go
 *   out from one `opts.deferWrite` call, corked once.
 * - QoS 0 calls back from the check phase (afterIo) and never waits for a full socket (no drain
 *   timeout): it is bounded by `opts.admit`, and its bytes count in writableLength at once.
 * - QoS 1/2 calls back as aedes' write() does: in the check phase once written, or, when the write
 *   found the socket over its high-water mark, after 'drain' through aedes' own waitForDrain (its
 *   drain timeout included). That wait is what holds the publisher back: QoS 1 is never dropped.
 * - A failed write ends the client through `_onError`, as aedes' does.
 * - A session that is not clean keeps aedes' deliverQoS (its in-flight messages are stored first).
 * Must run right after `aedes.handle()`, before any subscription captures the originals.
 */
export function directDelivery(client: Client, opts: DeliveryOptions): void {
  const c = client as unknown as DeliveringClient
  const original = mqttPacket as unknown as { writeToStream: WriteToStream }
  const stored = c.deliverQoS
  const fail = (err: Error, cb?: () => void) =>
    afterIo(() => {
      c._onError(err)
      cb?.()
    })
  /** Writes one delivery; true when the socket is still under its high-water mark. */
  const write = (p: ForwardPacket, qos: number, id: number | undefined): boolean => {
    const payload = p.payload || EMPTY_PAYLOAD
    const ok = writePublish(c.conn, p.topic, payload, qos, id, !!p.dup, !!p.retain, true)
    // What the fast path declines (a Buffer topic…) goes as aedes would write it.
    if (ok !== undefined) return ok
    const packet = { cmd: p.cmd || 'publish', topic: p.topic, payload, qos, dup: !!p.dup, retain: !!p.retain, ...(qos > 0 ? { messageId: id } : {}) }
    return original.writeToStream(packet, c.conn)
  }
  // This client's deliveries of the turn, in order: the packet, then the QoS 0 size it was admitted
  // with (-1 for QoS 1/2), the QoS it goes out at, its packet id and its callback (QoS 1/2).
  let queue: Pending[] = []
  const flush = () => {
    const q = queue
    queue = []
    // Corked once for the batch, as mqtt-packet corks once per packet (write-batching.ts counts corks).
    corkForTick(c.conn)
    for (const d of q) {
      if (d.size >= 0) opts.sent(d.size) // the bytes are in writableLength from here on (or gone with a failed client)
      if (!c.connecting && !c.connected) {
        fail(new Error('connection closed'), d.cb)
        continue
      }
      let ok: boolean
      try {
        ok = write(d.packet, d.qos, d.id)
      } catch {
        fail(new Error('packet received not valid'), d.cb)
        continue
      }
      if (d.cb) {
        // Called without arguments, as aedes' writeQoS calls back: waitForDrain passes (err,
        // client), and the retained-message stream at SUBSCRIBE (handlers/subscribe.js) takes a
        // second argument as data to push and an error as fatal (it is not listened for).
        const cb = d.cb
        if (!ok && !c.errored) c.waitForDrain(() => cb())
        else afterIo(cb)
      }
    }
  }
  const enqueue = (d: Pending) => {
    if (queue.length === 0) opts.deferWrite(flush)
    queue.push(d)
  }
  const forwarded = (p: ForwardPacket) => ((p.clientId === c.id && p.nl) || !dedupe(c, p) ? undefined : c.broker.authorizeForward(c, p) || undefined)
  c.deliver0 = (packet, cb) => {
    const toForward = forwarded(packet as ForwardPacket)
    const size = toForward ? opts.admit(toForward) : -1
    if (toForward && size >= 0) enqueue({ packet: toForward, size, qos: 0, id: undefined, cb: undefined })
    afterIo(cb)
  }
  c.deliverQoS = (packet, cb) => {
    const p = packet as ForwardPacket
    if (!p.qos) return c.deliver0(packet, cb)
    if (!c.clean) return stored(packet, cb)
    const toForward = forwarded(p)
    if (!toForward) return afterIo(cb)
    const id = toForward.messageId || takePacketId(client)
    const sub = c.subscriptions[toForward.topic]
    const qos = sub && (sub.qos || 0) < (toForward.qos || 0) ? sub.qos || 0 : toForward.qos || 0
    enqueue({ packet: toForward, size: -1, qos, id, cb })
  }
}

interface Pending {
  packet: ForwardPacket
  size: number
  qos: number
  id: number | undefined
  cb: (() => void) | undefined
}

/**
 * `setImmediate(cb)`, with one Immediate per turn instead of one per call (a fan-out to 100
 * subscribers made 100). QoS 0 deliveries call back from here, as aedes' do: aedes reads a
 * client's socket again only once every packet of its last read is done, so this keeps reading
 * at one read per client per turn. Calling back sooner (at the end of the tick) let one turn go
 * through every publisher's whole kernel backlog while timers and the subscriber's socket waited.
 */
const afterIo = batchedDefer((run) => setImmediate(run))

/** aedes' dedupe (client.js): a packet from the bus is delivered once per broker counter. */
function dedupe(c: DeliveringClient, p: ForwardPacket): boolean {
  const id = p.brokerId
  if (!id) return true
  const counter = p.brokerCounter ?? 0
  const fresh = (c.duplicates[id] || 0) < counter
  if (fresh) c.duplicates[id] = counter
  return fresh
}
