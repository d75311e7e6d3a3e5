/**
 * The bridge to `$upstream` (PROTOCOL.md §6): one MQTT.js connection to the parent broker as
 * this hub's edge device (SAS, TLS with the parent's CA). `out` rules follow local topics and
 * forward them through the durable ForwardQueue; `in` rules subscribe on the parent and
 * publish locally. Telemetry routed INTO $upstream goes through the same queue.
 *
 * Delivery is at-least-once: a message leaves the queue only when the parent acknowledged it
 * (QoS 1), so a crash between the parent's PUBACK and our delete resends it. Without an
 * end-to-end message id in MQTT 3.1.1 user topics, exactly-once would need the parent's help.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

import type { Aedes, AedesPublishPacket } from 'aedes'
import type { MQEmitter } from 'mqemitter'
import mqtt, { type MqttClient } from 'mqtt'
import type { Logger } from 'pino'

import type { BridgeConfig } from '../edgehub/config.js'
import { topicMatches } from '../policy/topic.js'
import type { UpstreamSettings } from '../registry/types.js'
import { buildSasToken, deviceResource } from '../sas/index.js'
import { ForwardQueue } from './queue.js'
import { compileBridgeSettings, remapTopic, type BridgeRule } from './topics.js'

export type BridgeState = 'disabled' | 'connecting' | 'connected' | 'disconnected'

export interface BridgeStatus {
  endpoint: '$upstream'
  state: BridgeState
  parent?: string
  queueLength: number
  expired: number
  /** Dropped because the queue was full. */
  dropped: number
  forwarded: number
  received: number
  lastError?: string
}

type MqHandler = Parameters<MQEmitter['on']>[1]

/** The one thing the bridge does with the local broker: publish what comes `in` from the parent. */
export type LocalPublisher = Pick<Aedes, 'publish'>

/** Capped exponential backoff with full jitter: 0.5 s, 1 s, 2 s … 30 s. */
export function backoffMs(attempt: number, random = Math.random): number {
  const cap = Math.min(30_000, 500 * 2 ** attempt)
  return Math.round(cap / 2 + (random() * cap) / 2)
}

const WINDOW = 100

export class UpstreamBridge {
  private upstream?: UpstreamSettings
  private outRules: BridgeRule[] = []
  private inRules: BridgeRule[] = []
  private readonly localHandlers = new Map<string, MqHandler>()
  private client?: MqttClient
  private connected = false
  private attempt = 0
  private reconnectTimer?: NodeJS.Timeout
  private ttlSecs = 7200
  private sentSeq = 0
  private inflight = 0
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
  ) {}

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
      forwarded: this.forwarded,
      received: this.received,
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
    for (const filter of wanted) {
      if (this.localHandlers.has(filter)) continue
      const handler: MqHandler = (packet, done) => this.onLocal(packet as unknown as AedesPublishPacket, done)
      this.localHandlers.set(filter, handler)
      this.mq.on(filter, handler)
    }
    const oldIn = this.inRules.map((r) => r.filter)
    this.inRules = inbound
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
      const newIn = inbound.map((r) => r.filter)
      const gone = oldIn.filter((f) => !newIn.includes(f))
      if (gone.length) this.client.unsubscribe(gone)
      this.subscribeRemote(this.client, newIn.filter((f) => !oldIn.includes(f)))
    }
    this.log.info({ out: out.map((r) => r.filter), in: inbound.map((r) => r.filter), parent: `${upstream.gatewayHostName}:${upstream.port}` }, 'bridge configured')
  }

  /** A local message matched an `out` rule: queue it durably before the local PUBACK. */
  private onLocal(packet: AedesPublishPacket, done: () => void): void {
    try {
      if (!this.upstream || this.injected.has(packet.payload as Buffer) || packet.topic.startsWith('$')) return done()
      for (const rule of this.outRules) {
        if (!topicMatches(rule.filter, packet.topic)) continue
        const remote = remapTopic(packet.topic, rule.from, rule.to)
        if (remote === undefined) continue
        this.queue.push(remote, Buffer.from(packet.payload as Buffer), packet.qos === 0 ? 0 : 1, packet.retain)
        break
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'store-and-forward queue write failed')
    }
    done()
    this.drain()
  }

  /** Telemetry routed INTO $upstream: forwarded to the parent as the device's own telemetry. */
  enqueueTelemetry(topic: string, payload: Buffer): void {
    this.queue.push(topic, payload, 1, false)
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
    const client = mqtt.connect({
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
      this.inflight = 0
      this.setState('connected', '')
      this.lastError = undefined
      this.log.info({ parent: `${up.gatewayHostName}:${up.port}` }, 'bridge connected to $upstream')
      this.subscribeRemote(client, this.inRules.map((r) => r.filter))
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
    client.on('close', () => {
      if (this.client !== client) return
      this.connected = false
      this.client = undefined
      client.removeAllListeners()
      client.end(true)
      if (this.closed || !this.upstream) return
      this.setState('disconnected')
      this.scheduleReconnect()
    })
  }

  /** Subscribes on the parent for `in` rules; a refused filter (SUBACK 0x80) is an error, not silence. */
  private subscribeRemote(client: MqttClient, filters: string[]): void {
    if (filters.length === 0) return
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      if (this.client !== client) return
      if (err) {
        // MQTT.js reports a SUBACK 0x80 (refused) as an error too.
        this.lastError = `$upstream refused or failed the subscription to ${filters.join(', ')}: ${err.message} (does the parent's policy let "${this.upstream?.deviceId}" subscribe to it?)`
        this.log.warn({ filters, err: err.message }, 'bridge could not subscribe on $upstream')
        return this.onStatus(this.status())
      }
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic)
      if (refused.length) {
        this.lastError = `$upstream refused the subscription to ${refused.join(', ')} (not authorized by the parent's policy)`
        this.log.warn({ filters: refused }, 'bridge subscription refused by $upstream')
        this.onStatus(this.status())
      }
      const ok = filters.filter((f) => !refused.includes(f))
      if (ok.length) this.log.info({ filters: ok }, 'bridge subscribed on $upstream')
    })
  }

  private scheduleReconnect(): void {
    if (this.closed) return
    const ms = backoffMs(this.attempt++)
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
    for (const rule of this.inRules) {
      if (!topicMatches(rule.filter, topic)) continue
      const local = remapTopic(topic, rule.from, rule.to)
      if (local === undefined) continue
      const body = Buffer.from(payload)
      this.injected.add(body)
      this.received++
      this.aedes.publish({ cmd: 'publish', topic: local, payload: body, qos, retain, dup: false }, (err) => {
        if (err) this.log.warn({ err: err.message, topic: local }, 'bridge could not publish locally')
      })
      return
    }
  }

  /** Sends queued messages in order with a bounded window; each leaves the queue on PUBACK. */
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
      while (this.inflight < WINDOW) {
        const batch = this.queue.peek(this.sentSeq, WINDOW - this.inflight)
        if (batch.length === 0) break
        for (const m of batch) {
          this.sentSeq = m.seq
          this.inflight++
          if (this.inRules.some((r) => topicMatches(r.filter, m.topic))) {
            const key = this.echoKey(m.topic, m.payload)
            this.echoes.set(key, (this.echoes.get(key) ?? 0) + 1)
          }
          client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain }, (err) => {
            // A callback of a closed connection (flushed with an error) must not touch the
            // window of the next one: `connect` restarted it at 0.
            if (this.client !== client) return
            this.inflight--
            if (err) return
            this.queue.ack(m.seq)
            this.forwarded++
            if (this.inflight === 0) this.onStatus(this.status())
            this.drain()
          })
        }
      }
    } finally {
      this.draining = false
    }
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
