/**
 * The bridge to `$upstream` (PROTOCOL.md §6): one MQTT.js connection to the parent broker as
 * this hub's edge device (SAS, TLS with the parent's CA). `out` rules follow local topics and
 * forward them through the durable ForwardQueue; `in` rules subscribe on the parent and
 * publish locally. Telemetry routed INTO $upstream goes through the same queue.
 *
 * Delivery is at-least-once: a message leaves the queue only when the parent acknowledged it
 * (QoS 1), so a crash between the parent's PUBACK and our delete resends it. Without an
 * end-to-end message id in MQTT 3.1.1 user topics, exactly-once would need the parent's help.
 *
 * A message the parent refuses must not block the queue. On MQTT 3.1.1 a refusal is the parent
 * closing the connection (IoT Hub and edgeHub both do): the oldest unacknowledged message in flight
 * when the connection closed is the suspect. After reconnecting (with backoff) it is sent alone,
 * before anything else; acknowledged, the window opens again; the connection closes again while it
 * is the only one in flight, another attempt. After MAX_ATTEMPTS (2 when its topic was refused
 * recently) it moves to the dead-letter store (dead-letters.ts) and the queue moves on. An explicit
 * refusal (a PUBACK with a failure reason code, MQTT 5) counts the same way. An innocent message
 * hit by an outage (the parent killed while it was in flight) is acknowledged on its solitary
 * resend, so an outage costs at most one attempt and one duplicate at the parent.
 *
 * When the `out` rules change, what is queued is re-checked against them (ForwardQueue.recheck):
 * a message no rule covers any more is dropped and counted, one a rule maps elsewhere now follows it.
 *
 * `in` rules subscribe on the parent once per remote filter (remoteFilters: no repeats, none
 * another one covers), one filter per SUBSCRIBE so that each SUBACK answers exactly one filter;
 * what arrives is published locally once for every rule that matches it. A filter the parent
 * refuses is logged once and tried again on the next connection; one whose SUBACK MQTT.js cannot
 * use (no return code: it drops the connection) is logged once and not subscribed again until the
 * rules change, so neither becomes a reconnect loop.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

import type { Aedes, AedesPublishPacket } from 'aedes'
import type { MQEmitter } from 'mqemitter'
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'

import type { BridgeConfig } from '../edgehub/config.js'
import { topicMatches } from '../policy/topic.js'
import type { UpstreamSettings } from '../registry/types.js'
import { buildSasToken, deviceResource } from '../sas/index.js'
import { queueDeadLetters, type DeadLetterOps } from './dead-letters.js'
import { ForwardQueue, type QueuedMessage, type Recheck } from './queue.js'
import { compileBridgeSettings, remapTopic, remoteFilters, type BridgeRule } from './topics.js'

export type BridgeState = 'disabled' | 'connecting' | 'connected' | 'disconnected'

export interface BridgeStatus {
  endpoint: '$upstream'
  state: BridgeState
  parent?: string
  queueLength: number
  expired: number
  /** Dropped because the queue was full. */
  dropped: number
  /** Queued under earlier `out` rules that no rule covers any more: dropped when the rules changed. */
  droppedNoRule: number
  /** Messages in the dead-letter store (refused by the parent): `edgemq bridge dead-letters list`. */
  deadLettered: number
  forwarded: number
  received: number
  /** The latest message moved to the dead-letter store. */
  lastDeadLetter?: { topic: string; at: string; attempts: number; reason: string }
  /** Remote filters of `in` rules the parent refused (or answered with an unusable SUBACK). */
  refusedFilters?: string[]
  lastError?: string
}

type MqHandler = Parameters<MQEmitter['on']>[1]

// MQTT.js only once a bridge connects: ~0.18 s of every broker's start-up otherwise.
const require = createRequire(import.meta.url)
const loadMqtt = () => require('mqtt') as typeof import('mqtt')

/** The one thing the bridge does with the local broker: publish what comes `in` from the parent. */
export type LocalPublisher = Pick<Aedes, 'publish'>

/** Capped exponential backoff with full jitter: 0.5 s, 1 s, 2 s … 30 s (from `baseMs`, 0.5 s by default). */
export function backoffMs(attempt: number, random = Math.random, baseMs = 500): number {
  // A hub record edited by hand may hold anything: a base that is not a positive number would make a reconnect loop.
  const base = Number.isFinite(baseMs) && baseMs > 0 ? baseMs : 500
  const cap = Math.min(30_000, base * 2 ** attempt)
  return Math.round(cap / 2 + (random() * cap) / 2)
}

const WINDOW = 100

/** Failed deliveries of one message before it is dead-lettered. */
export const MAX_ATTEMPTS = 5
/** When a message on a topic the parent refused recently fails (one burst attribution + one solitary resend). */
export const MAX_ATTEMPTS_KNOWN_REFUSED = 2
/** How long a dead-lettered topic counts as "refused recently", and how many such topics are remembered. */
const REFUSED_TOPIC_MS = 10 * 60_000
const REFUSED_TOPICS_MAX = 1000

const TELEMETRY_TOPIC = /^devices\/[^/]+\/(modules\/[^/]+\/)?messages\/events(\/|$)/

/** The remote topic the first `out` rule that covers `local` maps it to (the order onLocal uses). */
export function mapOut(rules: readonly BridgeRule[], local: string): string | undefined {
  for (const rule of rules) {
    if (!topicMatches(rule.filter, local)) continue
    const remote = remapTopic(local, rule.from, rule.to)
    if (remote !== undefined) return remote
  }
  return undefined
}

/**
 * A queued message against the current `out` rules: routed telemetry stays; a message of a rule
 * follows the rule that covers its local topic now, or goes. Rows of an edgemq before this check
 * have no local topic: it is recovered through the rule that could have produced the remote one.
 */
export function recheckQueued(rules: readonly BridgeRule[], m: Pick<QueuedMessage, 'topic' | 'localTopic' | 'origin'>): Recheck {
  if (m.origin === 'route') return { keep: true }
  let local = m.localTopic
  if (local === undefined) {
    for (const rule of rules) {
      const l = remapTopic(m.topic, rule.to, rule.from)
      if (l !== undefined && topicMatches(rule.filter, l)) {
        local = l
        break
      }
    }
    if (local === undefined) return m.origin === undefined && TELEMETRY_TOPIC.test(m.topic) ? { keep: true } : { keep: false }
  }
  const topic = mapOut(rules, local)
  return topic === undefined ? { keep: false } : { keep: true, topic }
}

export class UpstreamBridge {
  private upstream?: UpstreamSettings
  private outRules: BridgeRule[] = []
  private inRules: BridgeRule[] = []
  /** Remote filters the parent refused ('refused': asked again on each connection) or broke ('broken': not asked again). */
  private readonly refusedFilters = new Map<string, 'refused' | 'broken'>()
  private readonly localHandlers = new Map<string, MqHandler>()
  private client?: MqttClient
  private connected = false
  private attempt = 0
  /** The first reconnect delay (the broker sets it from its `bridgeBackoffMs` setting). */
  backoffBaseMs = 500
  private reconnectTimer?: NodeJS.Timeout
  private ttlSecs = 7200
  private sentSeq = 0
  /** Sent on this connection and not acknowledged yet: seq → remote topic. */
  private readonly inflight = new Map<number, string>()
  /** A message that failed and is sent alone, before anything else, on the next connection. */
  private suspect?: { seq: number; topic: string; attempts: number }
  /** A failure was already counted on this connection (an explicit refusal; its close must not count another). */
  private failedThisConnection = false
  /** Topics dead-lettered recently → when. */
  private readonly refusedTopics = new Map<string, number>()
  /** Why messages were dead-lettered; shown as lastError until the dead-letter store is emptied. */
  private deliveryError?: string
  private lastDeadLetter?: BridgeStatus['lastDeadLetter']
  readonly deadLetters: DeadLetterOps
  private draining = false
  private closed = false
  /** When the TTL sweep last ran (it runs on connect and then at most once a second). */
  private lastExpireAt = 0
  /** Payloads this bridge published locally: never forwarded back out (no loops). */
  private readonly injected = new WeakSet<Buffer>()
  /** What we sent up recently, so the parent echoing it back to our `in` subscription is dropped. */
  private readonly echoes = new Map<string, number>()
  private state: BridgeState = 'disabled'
  private lastError?: string
  private forwarded = 0
  private received = 0

  constructor(
    /** Where `in` messages are published locally: the broker's authorization pipeline in front of aedes. */
    private readonly aedes: LocalPublisher,
    /** The broker's message bus: `out` rules listen on it like any subscriber. */
    private readonly mq: MQEmitter,
    private readonly log: Logger,
    readonly queue: ForwardQueue,
    private readonly onStatus: (s: BridgeStatus) => void = () => undefined,
    private readonly maxAttempts = MAX_ATTEMPTS,
  ) {
    this.deadLetters = queueDeadLetters(queue, () => this.onDeadLettersChanged())
  }

  /** True when `out` rules follow local topics (their queue write must precede a PUBACK). */
  get forwardsOut(): boolean {
    return this.outRules.length > 0
  }

  get enabled(): boolean {
    return this.upstream !== undefined
  }

  status(): BridgeStatus {
    return {
      endpoint: '$upstream',
      state: this.state,
      ...(this.upstream ? { parent: `${this.upstream.gatewayHostName}:${this.upstream.port}` } : {}),
      queueLength: this.queue.length,
      expired: this.queue.expired,
      dropped: this.queue.dropped,
      droppedNoRule: this.queue.droppedNoRule,
      deadLettered: this.queue.deadLettered,
      forwarded: this.forwarded,
      received: this.received,
      ...(this.lastDeadLetter ? { lastDeadLetter: this.lastDeadLetter } : {}),
      ...(this.refusedFilters.size ? { refusedFilters: [...this.refusedFilters.keys()] } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    }
  }

  private setState(state: BridgeState, error?: string): void {
    this.state = state
    if (error !== undefined) this.lastError = error
    this.onStatus(this.status())
  }

  /** Applies upstream settings and `mqttBroker.bridges` (live: called again on every change). */
  configure(upstream: UpstreamSettings | undefined, bridges: readonly BridgeConfig[], ttlSecs: number): void {
    this.ttlSecs = ttlSecs
    const settings = bridges.filter((b) => b.endpoint === '$upstream').flatMap((b) => b.settings)
    const { out, in: inbound } = compileBridgeSettings(settings)
    // Local (out) subscriptions: only the difference is applied.
    const wanted = new Set(out.map((r) => r.filter))
    for (const [filter, handler] of this.localHandlers) {
      if (!wanted.has(filter)) {
        this.mq.removeListener(filter, handler)
        this.localHandlers.delete(filter)
      }
    }
    this.outRules = out
    this.recheck(out)
    for (const filter of wanted) {
      if (this.localHandlers.has(filter)) continue
      const handler: MqHandler = (packet, done) => this.onLocal(packet as unknown as AedesPublishPacket, done)
      this.localHandlers.set(filter, handler)
      this.mq.on(filter, handler)
    }
    const oldIn = remoteFilters(this.inRules)
    const newIn = remoteFilters(inbound)
    this.inRules = inbound
    // A filter that left the rules is forgotten: added again later, it is asked (and logged) afresh.
    for (const f of this.refusedFilters.keys()) if (!newIn.includes(f)) this.refusedFilters.delete(f)
    const changedUpstream = JSON.stringify(upstream) !== JSON.stringify(this.upstream)
    this.upstream = upstream
    if (!upstream) {
      this.disconnect()
      this.setState('disabled')
      return
    }
    if (changedUpstream || !this.client) {
      this.disconnect()
      this.connect()
    } else if (this.connected && this.client) {
      const gone = oldIn.filter((f) => !newIn.includes(f))
      if (gone.length) this.client.unsubscribe(gone)
      this.rememberFilters(newIn)
      this.subscribeRemote(this.client, newIn.filter((f) => !oldIn.includes(f)))
    }
    this.log.info({ out: out.map((r) => r.filter), in: newIn, parent: `${upstream.gatewayHostName}:${upstream.port}` }, 'bridge configured')
  }

  /** Queued messages against new `out` rules (a no-op when the store was last checked against the same rules). */
  private recheck(out: readonly BridgeRule[]): void {
    try {
      const fingerprint = JSON.stringify(out.map((r) => [r.filter, r.from, r.to]))
      const r = this.queue.recheck(fingerprint, (m) => recheckQueued(out, m))
      if (r && (r.dropped || r.remapped)) {
        this.log.warn({ dropped: r.dropped, remapped: r.remapped, droppedNoRule: this.queue.droppedNoRule }, 'bridge rules changed: queued messages no rule covers were dropped, others follow their rule')
        if (this.suspect && !this.queue.peek(this.suspect.seq - 1, 1).some((m) => m.seq === this.suspect?.seq)) this.suspect = undefined
        this.onStatus(this.status())
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'could not re-check the store-and-forward queue against the new bridge rules')
    }
  }

  /** A local message matched an `out` rule: queue it durably before the local PUBACK. */
  private onLocal(packet: AedesPublishPacket, done: () => void): void {
    try {
      if (!this.upstream || this.injected.has(packet.payload as Buffer) || packet.topic.startsWith('$')) return done()
      const remote = mapOut(this.outRules, packet.topic)
      if (remote !== undefined) this.queue.push(remote, Buffer.from(packet.payload as Buffer), packet.qos === 0 ? 0 : 1, packet.retain, Date.now(), { origin: 'out', localTopic: packet.topic })
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'store-and-forward queue write failed')
    }
    done()
    this.drain()
  }

  /** Telemetry routed INTO $upstream: forwarded to the parent as the device's own telemetry. */
  enqueueTelemetry(topic: string, payload: Buffer): void {
    this.queue.push(topic, payload, 1, false, Date.now(), { origin: 'route' })
    this.drain()
  }

  private connect(): void {
    const up = this.upstream
    if (!up || this.closed) return
    this.setState('connecting')
    let ca: Buffer | undefined
    try {
      ca = up.caFile ? readFileSync(up.caFile) : undefined
    } catch (err) {
      this.setState('disconnected', `cannot read the parent CA ${up.caFile}: ${(err as NodeJS.ErrnoException).code}`)
      return this.scheduleReconnect()
    }
    const password = buildSasToken({ resource: deviceResource(up.hostName, up.deviceId), key: up.sharedAccessKey, durationSecs: 3600 })
    const client = loadMqtt().connect({
      protocol: 'mqtts',
      host: up.gatewayHostName,
      port: up.port,
      ca,
      rejectUnauthorized: true,
      clientId: up.deviceId,
      username: `${up.hostName}/${up.deviceId}/?api-version=2021-04-12`,
      password,
      protocolVersion: 4,
      // A persistent session on the parent keeps what it publishes on our `in` topics while we are away.
      clean: false,
      reconnectPeriod: 0, // our own backoff with jitter, and a fresh SAS per attempt
      connectTimeout: 10_000,
      keepalive: 30,
    })
    this.client = client
    client.on('connect', () => {
      this.connected = true
      this.attempt = 0
      this.sentSeq = 0
      this.inflight.clear()
      this.failedThisConnection = false
      // A connection problem is over; why messages were dead-lettered stays until they are dealt with.
      this.lastError = this.deliveryError
      this.setState('connected')
      this.log.info({ parent: `${up.gatewayHostName}:${up.port}` }, 'bridge connected to $upstream')
      const wanted = remoteFilters(this.inRules)
      // The parent's persistent session may still hold filters of earlier rules (changed while we
      // were away): they would bring messages no rule wants, or twice where a new filter covers them.
      const stale = this.rememberedFilters().filter((f) => !wanted.includes(f))
      if (stale.length) {
        client.unsubscribe(stale)
        this.log.info({ filters: stale }, 'bridge unsubscribed on $upstream from filters of earlier rules')
      }
      this.rememberFilters(wanted)
      this.subscribeRemote(client, wanted)
      this.drain()
    })
    client.on('message', (topic, payload, packet) => this.onRemote(topic, payload, packet.qos === 0 ? 0 : 1, packet.retain))
    const parent = `${up.gatewayHostName}:${up.port}`
    client.on('error', (err: Error & { code?: string | number }) => {
      if (this.client !== client) return
      if (typeof err.code === 'number') {
        // A CONNACK refusal: the parent is there but will not have us.
        const why = err.message.replace(/^Connection refused: /, '')
        this.lastError = `${parent} refused the connection as "${up.deviceId}": ${why} (CONNACK ${err.code})`
        this.log.warn(
          { parent, deviceId: up.deviceId, code: err.code, err: why, hint: 'check the DeviceId and SharedAccessKey given to `hub set-upstream`, and that the parent\'s policy lets this device connect' },
          'bridge refused by $upstream',
        )
      } else {
        this.lastError = `cannot connect to ${parent}: ${err.message}`
        this.log.warn({ parent, err: err.message }, 'bridge cannot connect to $upstream')
      }
      this.onStatus(this.status())
    })
    client.on('close', () => this.onClosed(client))
  }

  private onClosed(client: MqttClient): void {
    if (this.client !== client) return
    this.connected = false
    this.client = undefined
    client.removeAllListeners()
    client.on('error', () => undefined)
    client.end(true)
    const inflight = [...this.inflight]
    this.inflight.clear()
    if (this.closed || !this.upstream) return
    if (!this.failedThisConnection && inflight.length > 0) {
      // The parent closed the connection with messages in flight: the oldest is the suspect.
      const [seq, topic] = inflight.reduce((a, b) => (b[0] < a[0] ? b : a))
      this.failure(seq, topic, 'the parent closed the connection right after it was sent (on MQTT 3.1.1 that is how a broker refuses a PUBLISH)')
    }
    this.setState('disconnected')
    this.scheduleReconnect(this.suspect ? this.suspect.attempts - 1 : 0)
  }

  /** A failed delivery of `seq`: another attempt, or the dead-letter store when it has had its attempts. */
  private failure(seq: number, topic: string, reason: string): void {
    let attempts: number
    try {
      attempts = this.queue.recordFailure(seq)
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'store-and-forward queue write failed')
      return
    }
    if (attempts === 0) return // no longer queued (expired, dropped by a rule change)
    const now = Date.now()
    const refusedAt = this.refusedTopics.get(topic)
    const known = refusedAt !== undefined && now - refusedAt < REFUSED_TOPIC_MS
    const limit = known ? Math.min(MAX_ATTEMPTS_KNOWN_REFUSED, this.maxAttempts) : this.maxAttempts
    if (attempts < limit) {
      this.suspect = { seq, topic, attempts }
      this.log.warn({ topic, attempt: attempts, of: limit, reason }, 'bridged message not acknowledged by $upstream: it is sent again alone')
      return
    }
    this.suspect = undefined
    const why = `${reason}; ${attempts} attempts`
    let moved = false
    try {
      moved = this.queue.deadLetter(seq, why, now)
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'could not move a message to the dead-letter store')
    }
    if (!moved) return
    this.refusedTopics.delete(topic)
    this.refusedTopics.set(topic, now)
    if (this.refusedTopics.size > REFUSED_TOPICS_MAX) this.refusedTopics.delete(this.refusedTopics.keys().next().value as string)
    this.lastDeadLetter = { topic, at: new Date(now).toISOString(), attempts, reason }
    this.deliveryError = `$upstream refused "${topic}" ${attempts} times (${reason}): moved to the dead-letter store (${this.queue.deadLettered} there; see \`edgemq bridge dead-letters list\`)`
    this.lastError = this.deliveryError
    this.log.warn({ topic, attempts, reason, deadLettered: this.queue.deadLettered }, 'bridged message moved to the dead-letter store; the queue moves on')
    this.onStatus(this.status())
  }

  /** After `dead-letters retry/purge`: send what was re-queued; an empty store clears its lastError. */
  private onDeadLettersChanged(): void {
    if (this.queue.deadLettered === 0 && this.deliveryError) {
      if (this.lastError === this.deliveryError) this.lastError = undefined
      this.deliveryError = undefined
    }
    this.onStatus(this.status())
    this.drain()
  }

  /**
   * Subscribes on the parent for `in` rules, one filter per SUBSCRIBE (each SUBACK then answers
   * exactly one). A refused filter (SUBACK 0x80) is an error, not silence, but logged once.
   */
  private subscribeRemote(client: MqttClient, filters: string[]): void {
    for (const filter of filters) {
      if (this.refusedFilters.get(filter) === 'broken') continue
      client.subscribe(filter, { qos: 1 }, (err, granted) => {
        // MQTT.js rejects a SUBACK 0x80 and one with the wrong number of codes alike, with the packet.
        const codes = (err as (Error & { packet?: { granted?: unknown[] } }) | null)?.packet?.granted ?? (granted ?? []).map((g) => g.qos)
        const refused = codes.some((c) => typeof c === 'number' && (c & 0x80) !== 0)
        if (err && !refused) {
          // No usable return code: MQTT.js drops the connection over it, so asking again would loop.
          return this.subscriptionFailed(filter, 'broken', `$upstream answered the subscription to ${filter} with a SUBACK the bridge cannot use (${err.message}); it is not asked again until the bridge rules change`, err.message)
        }
        if (this.client !== client) return
        if (refused) {
          return this.subscriptionFailed(filter, 'refused', `$upstream refused the subscription to ${filter} (does the parent's policy let "${this.upstream?.deviceId}" subscribe to it?)`)
        }
        if (this.refusedFilters.delete(filter)) this.onStatus(this.status())
        this.log.info({ filters: [filter] }, 'bridge subscribed on $upstream')
      })
    }
  }

  /** The remote filters last subscribed to (kept in forward.db: the parent's session outlives our process). */
  private rememberedFilters(): string[] {
    try {
      const v = JSON.parse(this.queue.getMeta('remoteFilters') ?? '[]') as unknown
      return Array.isArray(v) ? v.filter((f): f is string => typeof f === 'string') : []
    } catch {
      return []
    }
  }

  private rememberFilters(filters: string[]): void {
    try {
      this.queue.setMeta('remoteFilters', JSON.stringify(filters))
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not remember the bridge\'s remote filters')
    }
  }

  private subscriptionFailed(filter: string, kind: 'refused' | 'broken', message: string, err?: string): void {
    const known = this.refusedFilters.get(filter) === kind
    this.refusedFilters.set(filter, kind)
    this.lastError = message
    if (!known) {
      if (kind === 'refused') this.log.warn({ filters: [filter], hint: 'logged once; asked again on every connection' }, 'bridge subscription refused by $upstream')
      else this.log.warn({ filters: [filter], err }, 'bridge could not use the SUBACK of $upstream')
    }
    this.onStatus(this.status())
  }

  /** `atLeast`: a message that keeps failing backs off by its own attempts, though every connect succeeds. */
  private scheduleReconnect(atLeast = 0): void {
    if (this.closed) return
    const ms = backoffMs(Math.max(this.attempt++, atLeast), Math.random, this.backoffBaseMs)
    this.log.info({ inMs: ms, queued: this.queue.length }, 'bridge reconnecting')
    this.reconnectTimer = setTimeout(() => this.connect(), ms)
    this.reconnectTimer.unref()
  }

  private disconnect(): void {
    clearTimeout(this.reconnectTimer)
    const c = this.client
    this.client = undefined
    this.connected = false
    if (c) {
      c.removeAllListeners()
      c.on('error', () => undefined)
      c.end(true)
    }
  }

  private echoKey(topic: string, payload: Buffer): string {
    return topic + '\0' + createHash('sha1').update(payload).digest('base64')
  }

  private onRemote(topic: string, payload: Buffer, qos: 0 | 1, retain: boolean): void {
    const key = this.echoKey(topic, payload)
    const n = this.echoes.get(key)
    if (n !== undefined) {
      if (n <= 1) this.echoes.delete(key)
      else this.echoes.set(key, n - 1)
      return
    }
    // Once for every rule that matches (one remote subscription serves them all), once per local topic.
    const locals = new Set<string>()
    for (const rule of this.inRules) {
      if (!topicMatches(rule.filter, topic)) continue
      const local = remapTopic(topic, rule.from, rule.to)
      if (local !== undefined) locals.add(local)
    }
    if (locals.size === 0) return
    this.received++
    for (const local of locals) {
      const body = Buffer.from(payload)
      this.injected.add(body)
      this.aedes.publish({ cmd: 'publish', topic: local, payload: body, qos, retain, dup: false }, (err) => {
        if (err) this.log.warn({ err: err.message, topic: local }, 'bridge could not publish locally')
      })
    }
  }

  /**
   * Sends queued messages in order with a bounded window; each leaves the queue on PUBACK. A
   * suspect (see failure) goes alone first: nothing else is sent until the parent acknowledged it.
   */
  private drain(): void {
    if (this.draining || !this.connected || !this.client) return
    this.draining = true
    try {
      const now = Date.now()
      if (this.sentSeq === 0 || now - this.lastExpireAt >= 1000) {
        // Only what has not been handed to this connection yet: an in-flight message is the parent's now.
        this.lastExpireAt = now
        const n = this.queue.expire(this.ttlSecs, now, this.sentSeq)
        if (n > 0) this.log.info({ dropped: n, expired: this.queue.expired, timeToLiveSecs: this.ttlSecs }, 'dropped queued messages older than timeToLiveSecs')
      }
      const client = this.client
      if (this.suspect) {
        if (this.inflight.size > 0) return
        const [head] = this.queue.peek(0, 1)
        if (head?.seq === this.suspect.seq) {
          if (this.sentSeq < head.seq) this.send(client, head)
          return
        }
        this.suspect = undefined // gone from the queue (expired, dropped by a rule change, retried elsewhere)
      }
      while (this.inflight.size < WINDOW) {
        const batch = this.queue.peek(this.sentSeq, WINDOW - this.inflight.size)
        if (batch.length === 0) break
        for (const m of batch) this.send(client, m)
      }
    } finally {
      this.draining = false
    }
  }

  private send(client: MqttClient, m: QueuedMessage): void {
    this.sentSeq = m.seq
    this.inflight.set(m.seq, m.topic)
    if (this.inRules.some((r) => topicMatches(r.filter, m.topic))) {
      const key = this.echoKey(m.topic, m.payload)
      this.echoes.set(key, (this.echoes.get(key) ?? 0) + 1)
    }
    client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain }, (err) => {
      // A callback of a closed connection (flushed with an error) must not touch the
      // window of the next one: `connect` restarted it at 0.
      if (this.client !== client) return
      this.inflight.delete(m.seq)
      if (err) return this.onRefused(client, m, err)
      this.queue.ack(m.seq)
      this.forwarded++
      if (this.suspect?.seq === m.seq) {
        this.log.info({ topic: m.topic, attempts: this.suspect.attempts }, 'bridged message acknowledged on its solitary resend')
        this.suspect = undefined
      }
      if (this.inflight.size === 0) this.onStatus(this.status())
      this.drain()
    })
  }

  /**
   * The parent refused a message and kept the connection (a PUBACK with a failure reason code): one
   * attempt; the connection is closed so that it goes again alone, ahead of what followed it.
   */
  private onRefused(client: MqttClient, m: QueuedMessage, err: Error): void {
    if (this.failedThisConnection) return
    this.failedThisConnection = true
    this.failure(m.seq, m.topic, `the parent refused it: ${err.message}`)
    this.onClosed(client)
  }

  async close(): Promise<void> {
    this.closed = true
    for (const [filter, handler] of this.localHandlers) this.mq.removeListener(filter, handler)
    this.localHandlers.clear()
    const c = this.client
    this.disconnect()
    if (c) await new Promise<void>((r) => setTimeout(r, 0))
    this.queue.close()
  }
}
