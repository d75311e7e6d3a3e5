/**
 * aedes' hooks (authenticate, authorizePublish, authorizeSubscribe, authorizeForward), each a thin
 * adapter: find who is acting (a live session, or the owner of an orphaned will), ask the pipeline
 * (pipeline.ts), log any denial with its step and reason, then apply the verdict.
 */
import type { AedesPublishPacket, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'

import type { HubContext } from '../config/home.js'
import type { BrokerSettings } from '../registry/types.js'
import type { CompiledPolicy } from '../policy/index.js'
import { isDpsRequest, parseDpsUsername, type DpsUsername } from '../dps/topics.js'
import { authenticate, authenticateDps, CONNACK, type ConnackCode } from './authenticate.js'
import type { DpsEndpoint } from './dps.js'
import { modelIdOf, parseClientId } from './identity.js'
import { RegistryCache } from './registry-cache.js'
import type { IotHub } from './iothub.js'
import { liveSubscriptions } from './aedes-internals.js'
import { loggableId, type RefusalLog, type RefusalReason } from './limits.js'
import { decideForward, decidePublish, decideSubscribe, type PipelineLimits, type PublishOrigin, type PublishVerdict } from './pipeline.js'
import type { Actor, Session, SessionTable } from './session.js'
import { INERT_TOPIC } from './inert-topic.js'

export type AuthError = Error & { returnCode: ConnackCode }

export { INERT_TOPIC }

export function authError(code: ConnackCode): AuthError {
  return Object.assign(new Error('connection refused'), { returnCode: code })
}

function remoteAddress(client: Client): string {
  const c = client.conn as Partial<TLSSocket>
  return c.remoteAddress ? `${c.remoteAddress}:${c.remotePort}` : 'unknown'
}

function peerCert(client: Client): Buffer | undefined {
  const c = client.conn as Partial<TLSSocket>
  if (typeof c.getPeerCertificate !== 'function') return undefined
  const cert = c.getPeerCertificate(false)
  return cert && cert.raw && cert.raw.length > 0 ? cert.raw : undefined
}

export interface HooksDeps {
  ctx: HubContext
  log: Logger
  sessions: SessionTable
  iothub: IotHub
  /** The DPS endpoint: answers registration connections' requests. */
  dps: DpsEndpoint
  /** The policy in force now (undefined: none set, nobody may connect). */
  policy(): CompiledPolicy | undefined
  caPem(): string | undefined
  clockSkewSecs: number
  maxMessageSize: number
  settings: Pick<BrokerSettings, 'maxClientIdLength' | 'maxSubscriptionsPerClient'>
  refusals: RefusalLog
  /** The last step of an allowed publish: store what must outlive a crash before aedes' PUBACK. */
  persistBeforeAck(packet: PublishPacket, cb: (err?: Error | null) => void): void
  /**
   * Calls `cb` once the telemetry routed so far is in the built-in endpoint's log (its group
   * commit, eventhubs/endpoint.ts); at once when nothing waits. Every publish passes here, so
   * PUBACKs keep their order.
   */
  whenStored(cb: () => void): void
}

export class Hooks {
  /** The CONNECT lookups, cached until the registry changes (registry-cache.ts). */
  private readonly registry: RegistryCache

  /** The pipeline's limits, made once (not an object per PUBLISH). */
  private readonly limits: PipelineLimits

  constructor(private readonly d: HooksDeps) {
    this.registry = new RegistryCache(d.ctx.store)
    this.limits = { maxMessageSize: d.maxMessageSize }
  }

  /** CONNECTs refused before any lookup, answered with a CONNACK code in authenticate(). */
  private readonly refusedConnect = new WeakMap<Client, { reason: RefusalReason; code: ConnackCode }>()
  /** Filters authorized in this tick, not yet in aedes' live subscriptions (a SUBSCRIBE's list runs in parallel). */
  private readonly subscribing = new WeakMap<Client, Set<string>>()

  // ---- CONNECT ----

  /** Checks on the CONNECT itself, before aedes assigns an id or anything is looked up. */
  preConnect(client: Client, packet: ConnectPacket): Error | undefined {
    const id = packet.clientId ?? ''
    const note = (reason: RefusalReason, msg: string) => this.d.refusals.note(reason, { client: loggableId(id), address: remoteAddress(client) }, msg)
    if (id.length > this.d.settings.maxClientIdLength) {
      note('client-id-too-long', `CONNECT refused: client id longer than ${this.d.settings.maxClientIdLength} characters (CONNACK 0x02)`)
      this.refusedConnect.set(client, { reason: 'client-id-too-long', code: CONNACK.BAD_CLIENT_ID })
    } else if (id === '' && packet.clean === false) {
      // MQTT 3.1.1 §3.1.3-8: a persistent session needs a client id.
      note('empty-client-id', 'CONNECT refused: empty client id with clean session off (CONNACK 0x02)')
      this.refusedConnect.set(client, { reason: 'empty-client-id', code: CONNACK.BAD_CLIENT_ID })
    }
    const willTopic = packet.will?.topic
    if (willTopic !== undefined && (willTopic === '' || /[+#]/.test(willTopic) || willTopic.includes('\u0000'))) {
      // MQTT 3.1.1 §3.1.3.3: a will topic is a topic name; wildcards are a protocol violation (close).
      note('bad-will-topic', 'CONNECT refused: the will topic is empty or holds a wildcard')
      return new Error('invalid will topic')
    }
    return undefined
  }

  async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<void> {
    const { d } = this
    const early = this.refusedConnect.get(client)
    if (early) throw authError(early.code)
    // Looked up only when logged or shown (a getpeername call per CONNECT otherwise).
    const address = () => remoteAddress(client)
    const dpsUser = username === undefined ? undefined : parseDpsUsername(username)
    if (dpsUser) return this.authenticateDps(client, dpsUser, password, address)
    const { hub } = d.ctx
    const res = await authenticate(
      { clientId: client.id, username, password, peerCertDer: peerCert(client) },
      {
        hostName: hub.hostName,
        aliasHostNames: hub.dps ? [hub.dps.assignedHub] : [],
        caPem: d.caPem(),
        lookupDevice: (id) => this.registry.device(id),
        lookupModule: (id, m) => this.registry.module(id, m),
        // The skew goes to the verifier itself (not a shifted `now`) so the logged "expired N ago" is true.
        skewSecs: d.clockSkewSecs,
      },
    )
    if (!res.ok) {
      d.log.info({ client: loggableId(client.id), address: address(), code: res.code, reason: res.reason }, 'connection refused')
      throw authError(res.code)
    }
    const authz = d.policy()?.forIdentity(res.identity)
    if (!authz || !authz.canConnect()) {
      const reason = authz ? authz.decide('connect').reason : 'no authorization policy is set, so nobody may connect (set one with `edgemq edgehub set`)'
      d.log.info({ client: client.id, address: address(), code: CONNACK.NOT_AUTHORIZED, reason }, 'connection refused by policy')
      throw authError(CONNACK.NOT_AUTHORIZED)
    }
    const actsFor = res.device.edge && !res.identity.moduleId ? await this.childrenOf(res.device.deviceId) : undefined
    const generationId = (res.module ?? res.device).generationId
    const modelId = modelIdOf(username)
    this.open({ client, identity: res.identity, method: res.method, get address() { return address() }, connectedAt: Date.now(), expiresAt: res.expiresAt, authz, actsFor, generationId, ...(modelId ? { modelId } : {}), granted: new Set(), registered: false })
  }

  private open(session: Session): void {
    const { client } = session
    this.d.sessions.add(session)
    // A client that closes before aedes registers it gets no clientDisconnect; a registered one
    // ends at clientDisconnect, after aedes has published (and we have authorized) its will.
    client.conn.once('close', () => {
      if (!session.registered) this.d.sessions.end(client)
    })
  }

  /** A DPS registration connection: no identity yet and no policy; it may only talk DPS (pipeline.ts). */
  private authenticateDps(client: Client, user: DpsUsername, password: Buffer | undefined, address: () => string): void {
    const res = authenticateDps({ clientId: client.id, password, peerCertDer: peerCert(client) }, user, this.d.ctx.hub.dps?.idScope)
    if (!res.ok) {
      this.d.log.info({ client: loggableId(client.id), address: address(), code: res.code, reason: res.reason }, 'DPS connection refused')
      throw authError(res.code)
    }
    const identity = { clientId: client.id, deviceId: client.id }
    this.open({ client, identity, method: 'dps', get address() { return address() }, connectedAt: Date.now(), authz: undefined, dps: res.credentials, granted: new Set(), registered: false })
  }

  async childrenOf(edgeId: string): Promise<Set<string>> {
    return new Set((await this.d.ctx.store.listDevices()).filter((x) => x.parentId === edgeId).map((x) => x.deviceId))
  }

  // ---- PUBLISH (live, will, orphaned will) ----

  authorizePublish(client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (client) {
      // aedes authorizes a live client's will with the client itself, from its close path.
      const origin: PublishOrigin = (client as unknown as { will?: unknown }).will === packet ? 'will' : 'client'
      return this.applyPublish(this.d.sessions.of(client), client.id, origin, packet, cb)
    }
    // A will left by a broker that died (kill -9): aedes publishes it with no client. It is
    // trusted only as far as its owner, re-derived from the client id it was stored with, is now.
    const clientId = (packet as PublishPacket & { clientId?: string }).clientId ?? ''
    // aedes turns an error here into a broker-wide 'error' event and retries the will on every
    // sweep: a refused orphaned will is instead sent nowhere (the inert topic), then deleted.
    const sendNowhere = (err?: Error | null) => {
      if (err) {
        packet.topic = INERT_TOPIC
        packet.retain = false
      }
      cb(null)
    }
    this.actorFor(clientId).then(
      (actor) => this.applyPublish(actor, clientId, 'will', packet, sendNowhere),
      (err: Error) => {
        this.d.log.warn({ client: clientId, topic: packet.topic, err: err.message }, 'will refused: its owner could not be looked up')
        sendNowhere(err)
      },
    )
  }

  /** The registered, enabled identity behind a client id, as the policy in force now sees it. */
  async actorFor(clientId: string): Promise<Actor | undefined> {
    const identity = parseClientId(clientId)
    if (!identity) return undefined
    const { store } = this.d.ctx
    const device = await store.getDevice(identity.deviceId)
    if (!device || device.status !== 'enabled') return undefined
    if (identity.moduleId && !(await store.getModule(identity.deviceId, identity.moduleId))) return undefined
    const authz = this.d.policy()?.forIdentity(identity)
    if (!authz?.canConnect()) return undefined
    const actsFor = device.edge && !identity.moduleId ? await this.childrenOf(device.deviceId) : undefined
    return { identity, authz, actsFor }
  }

  /** Decides a publish that does not come from an MQTT client of this broker (the bridge's `in` rules). */
  decideInbound(actor: Actor | undefined, topic: string, qos: number, bytes: number): PublishVerdict {
    const v = decidePublish({ actor, origin: 'bridge', topic, qos, payloadBytes: bytes }, this.limits)
    if (v.kind === 'deny') this.d.log.info({ topic, step: v.step, reason: v.reason }, 'bridged message refused')
    return v
  }

  private applyPublish(actor: Actor | undefined, clientId: string, origin: PublishOrigin, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    const payload = packet.payload as Buffer
    const v = decidePublish({ actor, origin, topic: packet.topic, qos: packet.qos, payloadBytes: payload?.length ?? 0 }, this.limits)
    if (v.kind === 'deny') {
      const what = origin === 'client' ? 'publish denied: disconnecting' : `${origin} refused`
      this.d.log.info({ client: clientId, topic: packet.topic, step: v.step, reason: v.reason }, what)
      return cb(new Error(`${origin} not authorized`))
    }
    if (v.kind === 'answered') {
      // A request the hub answered still flows through aedes (no subscriber can see it), but it
      // must never become a retained message.
      if (isDpsRequest(v.request)) this.d.dps.answer(actor as Actor, v.request, payload)
      else this.d.iothub.answer(actor as Actor, v.request, payload)
      packet.retain = false
      return this.d.whenStored(() => cb(null))
    }
    if (v.telemetry) this.d.iothub.routeOwnTelemetry(v.telemetry, payload, actor)
    this.d.whenStored(() => this.d.persistBeforeAck(packet, cb))
  }

  // ---- SUBSCRIBE ----

  authorizeSubscribe(client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    const s = this.d.sessions.of(client)
    const v = decideSubscribe({ actor: s, filter: sub.topic, qos: sub.qos })
    if (v.kind === 'deny') {
      this.d.log.info({ client: client.id, filter: sub.topic, step: v.step, reason: v.reason }, 'subscribe denied')
      s?.granted.delete(sub.topic)
      return cb(null, null)
    }
    if (!this.roomFor(client, v.kind === 'rewritten' ? v.value.topic : sub.topic)) {
      this.d.refusals.note('max-subscriptions', { client: client.id, max: this.d.settings.maxSubscriptionsPerClient }, 'subscribe refused: too many subscriptions (SUBACK 0x80)')
      return cb(null, null)
    }
    // Recorded before aedes stores the session's filters (session-store.ts keeps only these).
    s?.granted.add(sub.topic)
    if (v.kind === 'rewritten') return cb(null, { ...sub, topic: v.value.topic, qos: v.value.qos })
    cb(null, sub)
  }

  /** Whether one more filter (as aedes will store it) fits under maxSubscriptionsPerClient. */
  private roomFor(client: Client, filter: string): boolean {
    const live = liveSubscriptions(client)
    if (filter in live) return true // a re-subscribe replaces, adds nothing
    let pending = this.subscribing.get(client)
    if (!pending) {
      pending = new Set()
      this.subscribing.set(client, pending)
      setImmediate(() => this.subscribing.delete(client))
    }
    if (pending.has(filter)) return true
    let held = Object.keys(live).length
    for (const f of pending) if (!(f in live)) held++
    if (held >= this.d.settings.maxSubscriptionsPerClient) return false
    pending.add(filter)
    return true
  }

  // ---- delivery ----

  authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const v = decideForward(this.d.sessions.of(client), client.id, packet.topic)
    if (v.kind === 'deny') return null
    if (v.kind === 'rewritten') return Object.assign(Object.create(Object.getPrototypeOf(packet) as object) as AedesPublishPacket, packet, { topic: v.value })
    return packet
  }
}
