/**
 * The edge hub broker: aedes assembled from injected parts (store, persistence, policy), with
 * IoT Hub authentication, the `$edgeHub` policy behind one front door, IoT Hub primitives,
 * and a loopback control API for the service side. `startEdgeBroker()` is what
 * `edgemq broker start` and `startHub()` call.
 */
import { once } from 'node:events'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'

import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from 'aedes'
import mqemitter, { type MQEmitter } from 'mqemitter'
import type { Logger } from 'pino'

import { UpstreamBridge, type BridgeStatus } from '../bridge/bridge.js'
import { ForwardQueue } from '../bridge/queue.js'
import { ClusterNode } from '../cluster/node.js'
import { attachClusterStore, openHub, readStorePointer, type HubContext } from '../config/home.js'
import { EdgeMqError } from '../errors.js'
import { createInMemoryHubPki, ensureHubPki, type HubPki } from '../pki/index.js'
import type { IdentityPolicy } from '../policy/index.js'
import type { Change } from '../registry/types.js'
import { authenticate, CONNACK, type AuthMethod, type ConnackCode } from './authenticate.js'
import { compileEdgeHubDesired, emptyEdgeHubState, type DesiredStatus, type EdgeHubState } from './edgehub-state.js'
import type { ClientIdentity } from './identity.js'
import { installIotHubPacketRewrites, IotHub } from './iothub.js'
import { createLogger, type LogLevel } from './logger.js'
import { createPersistence } from './persistence.js'
import { startControlServer, type ControlServer } from './control.js'
import { startWorkloadServer, type WorkloadServer } from '../workload/server.js'
import { removeRuntime, writeRuntime, type BrokerRuntime } from './runtime.js'

export interface EdgeBrokerOptions {
  home: string
  /** Nothing on disk: registry and MQTT persistence in memory. */
  inMemory?: boolean
  /** An already opened hub (in-memory hubs pass theirs). */
  context?: HubContext
  host?: string
  /** Plain MQTT port; 0 = a free port; null = no plain listener. Default 1883. */
  port?: number | null
  /** MQTT over TLS port; 0 = a free port; null = none. Default 8883. */
  tlsPort?: number | null
  /** Control API port (loopback); default 0 (free). */
  controlPort?: number
  /** IoT Edge workload API port (loopback HTTP, for `module env --mode workload`); default 0 (free). */
  workloadPort?: number
  /** IoT Hub service REST over HTTPS (azure-iothub SDK) on `host`; 0 = a free port; null/absent = none. */
  restPort?: number | null
  /** A PKI to serve with (in-memory hubs pass one); otherwise the home's, or a fresh in-memory one. */
  pki?: HubPki
  logLevel?: LogLevel
  logger?: Logger
  /** How often the registry's change feed is polled (ms). */
  pollMs?: number
  /** SAS clock skew tolerance (PROTOCOL.md §2: 300 s). */
  clockSkewSecs?: number
  /** Write `<home>/broker.json` (off for in-process test hubs sharing nothing). */
  writeRuntimeFile?: boolean
  /** The message bus (aedes-style injection): in-process by default, Redis for a cluster. */
  mq?: MQEmitter
  /**
   * Run as a node of a cluster on this Redis (redis://host:port[/db]); also implied by a home made
   * with `hub init --store redis://…`. See src/cluster/node.ts.
   */
  cluster?: string
}

export interface Session {
  client: Client
  identity: ClientIdentity
  method: AuthMethod
  address: string
  connectedAt: number
  expiresAt?: number
  authz: IdentityPolicy | undefined
  expiryTimer?: NodeJS.Timeout
  /** For an edge device: the child devices it may send telemetry for (nested edge, PROTOCOL.md §6). */
  actsFor?: Set<string>
}

type AuthError = Error & { returnCode: ConnackCode }

function authError(code: ConnackCode): AuthError {
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

/** `$`-rooted private namespace that carries one client's IoT Hub responses (see iothub.ts). */
export const PRIVATE_PREFIX = '$edgemq/'
/** Where aedes' own copy of an already published QoS1 message goes (see allowPublish): nowhere. */
const INERT_TOPIC = '$edgemq/-/published'

export class EdgeBroker {
  readonly aedes: Aedes
  readonly log: Logger
  readonly ctx: HubContext
  readonly sessions = new Map<string, Session>()
  readonly iothub: IotHub
  readonly bridge: UpstreamBridge
  ports: { mqtt?: number; mqtts?: number; control: number; rest?: number; workload?: number } = { control: 0 }
  host: string
  edgeHub: EdgeHubState = emptyEdgeHubState()
  lastDesiredStatus: DesiredStatus = { code: 200, description: '' }
  pki?: HubPki

  private debugPublish = false
  /** Set once any clean=false session subscribes (or the persistence holds one from before). */
  private persistentSessions = false
  private servers: NetServer[] = []
  private control?: ControlServer
  private workload?: WorkloadServer
  private pollTimer?: NodeJS.Timeout
  private lastSeq = 0
  private closing?: Promise<void>
  private readonly clockSkewSecs: number
  private readonly maxMessageSize: number
  private readonly ownsContext: boolean
  private readonly persistenceClose: () => Promise<void>
  /** Set when this broker is a node of a Redis cluster. */
  readonly cluster?: ClusterNode
  private unwatchChanges?: () => void

  private constructor(
    readonly opts: EdgeBrokerOptions,
    ctx: HubContext,
    aedes: Aedes,
    mq: MQEmitter,
    log: Logger,
    persistenceClose: () => Promise<void>,
    cluster?: ClusterNode,
  ) {
    this.ctx = ctx
    this.aedes = aedes
    this.log = log
    this.host = opts.host ?? '127.0.0.1'
    this.clockSkewSecs = opts.clockSkewSecs ?? 300
    this.maxMessageSize = ctx.hub.broker.maxMessageSize
    this.ownsContext = !opts.context
    this.persistenceClose = persistenceClose
    this.iothub = new IotHub(this)
    this.cluster = cluster
    const queue = new ForwardQueue(opts.inMemory ? ':memory:' : ctx.paths.forward)
    this.bridge = cluster ? cluster.createBridge(aedes, mq, log, queue, (st) => this.onBridgeStatus(st)) : new UpstreamBridge(aedes, mq, log, queue, (st) => this.onBridgeStatus(st))
  }

  static async start(opts: EdgeBrokerOptions): Promise<EdgeBroker> {
    if (opts.cluster && !opts.context && !opts.inMemory) await attachClusterStore(opts.home, opts.cluster)
    const ctx = opts.context ?? (await openHub({ home: opts.home, inMemory: opts.inMemory, createDefault: true }))
    const log = opts.logger ?? createLogger({ level: opts.logLevel })
    // Cluster node: Redis for the bus and MQTT state too (the registry already is, via the home's pointer).
    const clusterUrl = opts.context || opts.inMemory ? opts.cluster : (readStorePointer(opts.home)?.url ?? opts.cluster)
    let cluster: ClusterNode | undefined
    try {
      cluster = clusterUrl ? await ClusterNode.create(clusterUrl, ctx.hub.name, log) : undefined
    } catch (err) {
      if (!opts.context) await ctx.close()
      throw err
    }
    const persistence = cluster ? cluster.persistence : await createPersistence(opts.inMemory ? undefined : ctx.paths.persistence)
    const mq = opts.mq ?? cluster?.mq ?? mqemitter({ concurrency: 1000, matchEmptyLevels: true })
    let self: EdgeBroker | undefined
    const aedes = await Aedes.createBroker({
      ...(cluster ? { id: cluster.nodeId } : {}),
      persistence: persistence.persistence,
      mq,
      // IoT Hub client ids: up to 128 (device) + 1 + 128 (module); aedes' default is 23.
      maxClientsIdLength: 257,
      queueLimit: 1000,
      concurrency: 1000,
      heartbeatInterval: 60_000,
      authenticate: (client, username, password, done) => {
        ;(self as EdgeBroker).onAuthenticate(client, username, password).then(
          () => done(null, true),
          (err: AuthError) => done(err.returnCode ? err : authError(CONNACK.UNAVAILABLE), false),
        )
      },
      preConnect: (client, _packet, cb) => {
        installIotHubPacketRewrites(client)
        cb(null, true)
      },
      authorizePublish: (client, packet, cb) => {
        // Cluster: aedes PUBACKs right after this hook, so hold it while the Redis bus is down.
        if (cluster && client) return cluster.whenBusOpen(() => (self as EdgeBroker).onAuthorizePublish(client, packet, cb))
        ;(self as EdgeBroker).onAuthorizePublish(client, packet, cb)
      },
      authorizeSubscribe: (client, sub, cb) => (self as EdgeBroker).onAuthorizeSubscribe(client, sub, cb),
      authorizeForward: (client, packet) => (self as EdgeBroker).onAuthorizeForward(client, packet),
    })
    self = new EdgeBroker(opts, ctx, aedes, mq, log, persistence.close, cluster)
    try {
      await self.listen()
    } catch (err) {
      await self.close()
      throw err
    }
    return self
  }

  get hubName(): string {
    return this.ctx.hub.name
  }

  /** The TLS identity: given, else in memory for in-memory hubs (nothing on disk), else the home's pki/. */
  private async hubPki(): Promise<HubPki> {
    if (this.opts.pki) return this.opts.pki
    if (this.opts.inMemory) return createInMemoryHubPki({ hubName: this.hubName })
    return ensureHubPki(this.ctx.paths.pki, { hubName: this.hubName })
  }

  private async listen(): Promise<void> {
    const { opts } = this
    this.lastSeq = await this.ctx.store.lastChangeSeq()
    const stored = (this.aedes as unknown as { persistence?: { countOffline?: () => Promise<{ subsCount: number }> } }).persistence
    if (stored?.countOffline) this.persistentSessions = (await stored.countOffline()).subsCount > 0
    if (this.ctx.createdHub) this.log.info({ hub: this.hubName, edgeDevice: this.ctx.hub.edgeDeviceId, home: this.ctx.home }, 'created a new hub in this home')
    await this.reloadEdgeHub('start')
    this.wireEvents()

    const listenOn = async (server: NetServer, port: number, what: string): Promise<number> => {
      server.listen(port, this.host)
      try {
        await once(server, 'listening')
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EADDRINUSE') {
          throw new EdgeMqError(`port ${port} (${what}) is already in use`, { hint: `stop what uses it, or pick another port (e.g. --${what === 'mqtt' ? 'port' : 'tls-port'} 0 for a free one)` })
        }
        if (code === 'EACCES') throw new EdgeMqError(`no permission to listen on port ${port} (${what})`, { hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a higher port' })
        throw err
      }
      this.servers.push(server)
      return (server.address() as AddressInfo).port
    }

    if (opts.port !== null) {
      const server = createNetServer((socket) => this.aedes.handle(socket))
      this.ports.mqtt = await listenOn(server, opts.port ?? 1883, 'mqtt')
    }
    if (opts.tlsPort !== null) {
      this.pki = await this.hubPki()
      const server = createTlsServer(
        {
          key: this.pki.serverKeyPem,
          cert: this.pki.serverCertPem,
          ca: [this.pki.caPem],
          // X.509 devices present client certs; SAS clients present none and must still get in.
          requestCert: true,
          rejectUnauthorized: false,
        },
        (socket) => this.aedes.handle(socket),
      )
      server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'))
      this.ports.mqtts = await listenOn(server, opts.tlsPort ?? 8883, 'mqtts')
    } else if (!opts.inMemory || (opts.restPort ?? null) !== null) {
      this.pki = await this.hubPki().catch(() => undefined)
    }
    // The service REST API over HTTPS (what the azure-iothub SDK dials), same handlers as the control API.
    const rest = (opts.restPort ?? null) !== null && this.pki ? { port: opts.restPort as number, host: this.host, key: this.pki.serverKeyPem, cert: this.pki.serverCertPem } : undefined
    this.control = await startControlServer(this, { port: opts.controlPort ?? 0, rest })
    if (this.control.restPort !== undefined) this.ports.rest = this.control.restPort
    this.ports.control = this.control.port
    // The IoT Edge workload API (issue 11): modules started by `module run --mode workload` sign their SAS tokens here.
    this.workload = await startWorkloadServer({
      edgeDeviceId: () => this.ctx.hub.edgeDeviceId,
      lookupModule: (d, m) => this.ctx.store.getModule(d, m),
      trustBundle: async () => (this.pki ?? (await this.hubPki())).caPem,
      port: opts.workloadPort ?? 0,
      log: this.log,
    })
    this.ports.workload = this.workload.port

    this.pollTimer = setInterval(() => void this.pollChanges(), opts.pollMs ?? 200)
    this.pollTimer.unref()
    // A store that pushes (Redis pub/sub) wakes the follower at once; the poll stays as the backstop.
    this.unwatchChanges = await this.ctx.store.watch?.(() => void this.pollChanges())
    await this.cluster?.attach(this)
    if (opts.writeRuntimeFile ?? !opts.inMemory) writeRuntime(this.ctx.paths.brokerState, this.runtime())
  }

  runtime(): BrokerRuntime {
    return {
      pid: process.pid,
      host: this.host,
      ports: { ...this.ports },
      hub: this.hubName,
      startedAt: new Date().toISOString(),
      ...(this.opts.inMemory ? { inMemory: true } : {}),
      ...(this.cluster ? { node: this.cluster.nodeId } : {}),
    }
  }

  private wireEvents(): void {
    const a = this.aedes
    a.on('subscribe', (_subs, client) => {
      if (!client.clean) this.persistentSessions = true
    })
    // 'client' (registered, CONNACK follows), not 'clientReady': aedes emits clientReady only after
    // the offline queue is flushed, and a client that publishes and disconnects at once (mosquitto_pub)
    // is gone by then, so its connect line was never logged. 'client' pairs with 'clientDisconnect'.
    a.on('client', (client) => {
      const s = this.sessions.get(client.id)
      if (!s || s.client !== client) return
      this.log.info({ client: client.id, auth: s.method, address: s.address }, 'client connected')
      if (s.expiresAt !== undefined) {
        const ms = (s.expiresAt + this.clockSkewSecs) * 1000 - Date.now()
        s.expiryTimer = setTimeout(() => {
          this.log.info({ client: client.id }, 'SAS token expired: closing the session')
          client.close()
        }, Math.max(0, Math.min(ms, 2 ** 31 - 1)))
        s.expiryTimer.unref()
      }
    })
    a.on('clientDisconnect', (client) => {
      const s = this.sessions.get(client.id)
      if (s && s.client === client) {
        clearTimeout(s.expiryTimer)
        this.sessions.delete(client.id)
      }
      this.log.info({ client: client.id }, 'client disconnected')
    })
    a.on('clientError', (client, err) => {
      const s = this.sessions.get(client.id)
      if (s && s.client === client) {
        clearTimeout(s.expiryTimer)
        this.sessions.delete(client.id)
      }
      this.log.info({ client: client.id, reason: err.message }, 'client dropped')
    })
    a.on('connectionError', (client, err) => this.log.info({ client: client?.id, reason: err.message }, 'connection error'))
    if (this.log.isLevelEnabled('debug')) {
      this.debugPublish = true
      a.on('publish', (packet, client) => {
        if (client && packet.topic !== INERT_TOPIC) this.log.debug({ client: client.id, topic: packet.topic, qos: packet.qos, retain: packet.retain, bytes: packet.payload.length }, 'PUBLISH')
      })
      a.on('subscribe', (subs, client) => this.log.debug({ client: client.id, subscriptions: subs.map((s) => `${s.topic}@${s.qos}`) }, 'SUBSCRIBE'))
      a.on('unsubscribe', (topics, client) => this.log.debug({ client: client.id, topics }, 'UNSUBSCRIBE'))
      a.on('ping', (_p, client) => this.log.debug({ client: client.id }, 'PINGREQ'))
      a.on('connackSent', (packet, client) => this.log.debug({ client: client.id, returnCode: packet.returnCode }, 'CONNACK'))
    }
  }

  // ---- security: one front door (authenticate, then policy.decide) ----

  private async onAuthenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<void> {
    const address = remoteAddress(client)
    const { store, hub } = this.ctx
    const res = await authenticate(
      { clientId: client.id, username, password, peerCertDer: peerCert(client) },
      {
        hostName: hub.hostName,
        caPem: this.pki?.caPem,
        lookupDevice: (d) => store.getDevice(d),
        lookupModule: (d, m) => store.getModule(d, m),
        // The skew goes to the verifier itself (not a shifted `now`) so the logged "expired N ago" is true.
        skewSecs: this.clockSkewSecs,
      },
    )
    if (!res.ok) {
      this.log.info({ client: client.id, address, code: res.code, reason: res.reason }, 'connection refused')
      throw authError(res.code)
    }
    const authz = this.edgeHub.policy?.forIdentity(res.identity)
    if (!authz || !authz.canConnect()) {
      const reason = authz ? authz.decide('connect').reason : 'no authorization policy is set, so nobody may connect (set one with `edgemq edgehub set`)'
      this.log.info({ client: client.id, address, code: CONNACK.NOT_AUTHORIZED, reason }, 'connection refused by policy')
      throw authError(CONNACK.NOT_AUTHORIZED)
    }
    const prev = this.sessions.get(client.id)
    if (prev) clearTimeout(prev.expiryTimer)
    const actsFor = res.device.edge && !res.identity.moduleId ? await this.childrenOf(res.device.deviceId) : undefined
    this.sessions.set(client.id, { client, identity: res.identity, method: res.method, address, connectedAt: Date.now(), expiresAt: res.expiresAt, authz, actsFor })
    // A client that closes between authentication and registration gets no clientDisconnect from
    // aedes; without this its session (and expiry timer) would stay listed as connected.
    client.conn.once('close', () => {
      const cur = this.sessions.get(client.id)
      if (cur && cur.client === client) {
        clearTimeout(cur.expiryTimer)
        this.sessions.delete(client.id)
      }
    })
  }

  private async childrenOf(edgeId: string): Promise<Set<string>> {
    return new Set((await this.ctx.store.listDevices()).filter((d) => d.parentId === edgeId).map((d) => d.deviceId))
  }

  private session(client: Client): Session | undefined {
    const s = this.sessions.get(client.id)
    return s && s.client === client ? s : undefined
  }

  private onAuthorizePublish(client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (!client) return cb(null) // the broker's own publishes
    const s = this.session(client)
    if (!s || !s.authz) return cb(new Error('no session'))
    const topic = packet.topic
    if (packet.payload && packet.payload.length > this.maxMessageSize) {
      this.log.info({ client: client.id, topic, bytes: packet.payload.length, max: this.maxMessageSize }, 'message too large: disconnecting')
      return cb(new Error('message too large'))
    }
    if (topic.charCodeAt(0) === 36 /* $ */ || topic.startsWith('devices/')) {
      const handled = this.iothub.onPublish(s, packet)
      if (handled === 'deny') return cb(new Error('denied'))
      if (handled === 'handled') {
        // A request the hub answered itself still flows through aedes (no subscriber can see it),
        // but it must never become a retained message.
        packet.retain = false
        return cb(null)
      }
    }
    if (s.authz.canPublish(topic)) return this.allowPublish(client, packet, cb)
    this.log.info({ client: client.id, topic, reason: s.authz.decidePublish(topic).reason }, 'publish denied: disconnecting')
    cb(new Error('publish not authorized'))
  }

  /**
   * aedes writes a QoS1 PUBACK *before* it stores a retained message, queues the message for
   * offline persistent sessions or hands it to the bridge: a crash in between would lose an
   * acknowledged message. So edgemq publishes the message itself first (store, deliver, queue),
   * and only then lets aedes go on with an inert copy: aedes still sends the PUBACK (same packet
   * id) and publishes that copy to a topic nobody can subscribe to. In a cluster the Redis bus
   * would carry the inert copy too, so there the node's own bus guard applies instead.
   */
  private allowPublish(client: Client, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (packet.qos !== 1 || this.cluster) return cb(null)
    // Only a retained message, a persistent session or the bridge keeps a message past a crash;
    // with none of them aedes' own order loses nothing that could have been kept.
    if (!packet.retain && !this.persistentSessions && !this.bridge.forwardsOut) return cb(null)
    if (this.debugPublish) this.log.debug({ client: client.id, topic: packet.topic, qos: packet.qos, retain: packet.retain, bytes: packet.payload.length }, 'PUBLISH')
    const copy = { cmd: 'publish' as const, topic: packet.topic, payload: packet.payload, qos: 1 as const, retain: packet.retain, dup: false }
    this.aedes.publish(copy, (err) => {
      if (err) return cb(err)
      packet.topic = INERT_TOPIC
      packet.retain = false
      cb(null)
    })
  }

  private onAuthorizeSubscribe(client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    const s = this.session(client)
    if (!s || !s.authz) return cb(null, null)
    const rewritten = this.iothub.onSubscribe(s, sub)
    if (rewritten !== undefined) return cb(null, rewritten)
    if (s.authz.canSubscribe(sub.topic)) return cb(null, sub)
    this.log.info({ client: client.id, filter: sub.topic, reason: s.authz.decideSubscribe(sub.topic).reason }, 'subscribe denied')
    cb(null, null)
  }

  private onAuthorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (packet.topic.startsWith(PRIVATE_PREFIX)) return this.iothub.onForward(client, packet)
    // A persistent session's stored subscriptions and queued messages come back without a new
    // SUBSCRIBE: re-check each delivery against the policy in force now (a cached decision).
    const s = this.sessions.get(client.id)
    if (s && s.client === client && s.authz && !s.authz.canSubscribe(packet.topic)) return null
    return packet
  }

  // ---- live changes from other processes (PRODUCT.md: applied within 1 s) ----

  private polling = false
  private async pollChanges(): Promise<void> {
    if (this.polling || this.closing) return
    this.polling = true
    try {
      const changes = await this.ctx.store.changesSince(this.lastSeq)
      if (changes.length === 0) return
      this.lastSeq = changes[changes.length - 1].seq
      await this.applyChanges(changes)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'reading the registry change feed failed')
    } finally {
      this.polling = false
    }
  }

  async applyChanges(changes: Change[]): Promise<void> {
    const { edgeDeviceId } = this.ctx.hub
    let reloadEdgeHub = false
    const identities = new Set<string>()
    for (const c of changes) {
      if (c.kind === 'twin' && c.deviceId === edgeDeviceId && c.moduleId === '$edgeHub' && c.op !== 'reported') reloadEdgeHub = true
      else if (c.kind === 'twin' && c.op === 'desired' && c.deviceId) this.iothub.desiredChanged({ deviceId: c.deviceId, moduleId: c.moduleId })
      else if ((c.kind === 'device' || c.kind === 'module') && c.deviceId) identities.add(c.deviceId)
      else if (c.kind === 'hub') identities.add('*')
    }
    if (identities.has('*')) await this.reloadHubRecord()
    if (reloadEdgeHub) await this.reloadEdgeHub('change')
    if (identities.size > 0) await this.recheckIdentities(identities)
  }

  /** Drops sessions whose device or module was deleted or disabled. */
  private async recheckIdentities(deviceIds: Set<string>): Promise<void> {
    for (const s of [...this.sessions.values()]) {
      if (s.actsFor) s.actsFor = await this.childrenOf(s.identity.deviceId)
      if (!deviceIds.has('*') && !deviceIds.has(s.identity.deviceId)) continue
      const d = await this.ctx.store.getDevice(s.identity.deviceId)
      const m = s.identity.moduleId ? await this.ctx.store.getModule(s.identity.deviceId, s.identity.moduleId) : undefined
      let reason: string | undefined
      if (!d) reason = `device "${s.identity.deviceId}" was deleted`
      else if (d.status !== 'enabled') reason = `device "${s.identity.deviceId}" was disabled`
      else if (s.identity.moduleId && !m) reason = `module "${s.identity.clientId}" was deleted`
      if (reason) {
        this.log.info({ client: s.client.id, reason }, 'closing session')
        s.client.close()
      }
    }
  }

  /** Loads the `$edgeHub` desired document; on success re-authorizes every live session. */
  async reloadEdgeHub(why: 'start' | 'change'): Promise<void> {
    const twin = await this.ctx.store.getTwin({ deviceId: this.ctx.hub.edgeDeviceId, moduleId: '$edgeHub' })
    const version = twin?.desiredVersion ?? 0
    if (why === 'change' && version === this.edgeHub.desiredVersion) return
    const result = compileEdgeHubDesired(twin?.desired ?? {}, version)
    this.lastDesiredStatus = result.status
    await this.reportDesiredStatus(result.status)
    if (!result.ok) {
      this.log.warn({ reason: result.status.description }, 'rejected $edgeHub desired properties; the last good policy stays in force')
      return
    }
    this.edgeHub = result.state
    this.log.info(
      { version, statements: result.state.config.mqttBroker.authorizations?.length ?? 0, routes: Object.keys(result.state.config.routes).length },
      why === 'start' ? 'loaded $edgeHub configuration' : 'applied new $edgeHub configuration',
    )
    // The banner says this too, but --daemon and `-o json` runs print no banner: the log must.
    if (!result.state.policy) {
      this.log.warn('no authorization policy is set, so no client may connect: allow every registered identity with `edgemq edgehub set --default-policy`, or set one with `edgemq edgehub set <policy.json>`')
    }
    this.iothub.configure(result.state.config)
    this.configureBridge()
    if (why === 'change') this.reauthorizeAll()
  }

  private configureBridge(): void {
    const c = this.edgeHub.config
    this.bridge.configure(this.ctx.hub.upstream, c.mqttBroker.bridges, c.storeAndForwardConfiguration.timeToLiveSecs)
  }

  /** `hub set-upstream` (or another hub change) from another process. */
  private async reloadHubRecord(): Promise<void> {
    const hub = await this.ctx.store.getHub()
    if (!hub) return
    const before = JSON.stringify(this.ctx.hub.upstream)
    Object.assign(this.ctx.hub, hub)
    if (JSON.stringify(hub.upstream) !== before) {
      if (!hub.upstream) delete this.ctx.hub.upstream
      this.log.info({ upstream: hub.upstream ? `${hub.upstream.gatewayHostName}:${hub.upstream.port}` : null }, 'upstream changed')
      this.configureBridge()
    }
  }

  private bridgeReportTimer?: NodeJS.Timeout
  /** Bridge state into `$edgeHub` reported properties, at most once a second. */
  private onBridgeStatus(_st: BridgeStatus): void {
    if (this.bridgeReportTimer || this.closing) return
    this.bridgeReportTimer = setTimeout(() => {
      this.bridgeReportTimer = undefined
      if (this.closing) return
      const status = this.bridge.status()
      void this.ctx.store
        .updateTwin(
          { deviceId: this.ctx.hub.edgeDeviceId, moduleId: '$edgeHub' },
          (t) => ({ ...t, reported: { ...t.reported, bridges: [status] }, reportedVersion: t.reportedVersion + 1, version: t.version + 1 }),
          'reported',
        )
        .catch(() => undefined)
    }, 1000)
    this.bridgeReportTimer.unref()
  }

  private async reportDesiredStatus(status: DesiredStatus): Promise<void> {
    await this.ctx.store
      .updateTwin(
        { deviceId: this.ctx.hub.edgeDeviceId, moduleId: '$edgeHub' },
        (t) => ({
          ...t,
          reported: { ...t.reported, lastDesiredStatus: status, lastDesiredVersion: this.edgeHub.desiredVersion },
          reportedVersion: t.reportedVersion + 1,
          version: t.version + 1,
        }),
        'reported',
      )
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'cannot write $edgeHub reported properties'))
  }

  /** PROTOCOL.md §3: on a policy change every live session is re-checked. */
  private reauthorizeAll(): void {
    const policy = this.edgeHub.policy
    for (const s of [...this.sessions.values()]) {
      const authz = policy?.forIdentity(s.identity)
      if (!authz || !authz.canConnect()) {
        this.log.info({ client: s.client.id }, 'policy no longer allows this client to connect: disconnecting')
        s.authz = authz
        s.client.close()
        continue
      }
      s.authz = authz
      this.dropDeniedSubscriptions(s)
    }
  }

  private dropDeniedSubscriptions(s: Session): void {
    const subs = (s.client as unknown as { subscriptions: Record<string, { qos: number }> }).subscriptions ?? {}
    const denied = Object.keys(subs).filter((f) => !f.startsWith(PRIVATE_PREFIX) && !s.authz?.canSubscribe(f))
    if (denied.length === 0) return
    // aedes wants the filters as strings (its typings say Subscription objects, which it silently
    // ignores: the subscription stayed). No messageId: no UNSUBACK to a client that sent nothing.
    s.client.unsubscribe({ cmd: 'unsubscribe', unsubscriptions: denied }, (err) => {
      if (err) return this.log.warn({ client: s.client.id, filters: denied, err: err.message }, 'removing subscriptions the policy no longer allows failed')
      this.log.info({ client: s.client.id, filters: denied }, 'policy no longer allows these subscriptions: removed them')
    })
    // Without a messageId aedes leaves a persistent session's stored subscriptions alone; drop them
    // too, or they would keep queueing messages while the client is offline.
    if (!s.client.clean) {
      const persistence = (this.aedes as unknown as { persistence: { removeSubscriptions(c: Client, subs: string[]): Promise<void> } }).persistence
      persistence.removeSubscriptions(s.client, denied).catch((err: Error) => this.log.warn({ client: s.client.id, err: err.message }, 'cannot remove stored subscriptions'))
    }
  }

  /** Broker-originated publish (IoT Hub responses, C2D, routed messages). */
  publish(packet: { topic: string; payload: Buffer | string; qos?: 0 | 1; retain?: boolean }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish(
        { cmd: 'publish', topic: packet.topic, payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), qos: packet.qos ?? 0, retain: packet.retain ?? false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      )
    })
  }

  status() {
    return {
      hub: this.hubName,
      pid: process.pid,
      host: this.host,
      ports: this.ports,
      clients: [...this.sessions.values()].map((s) => ({ clientId: s.identity.clientId, auth: s.method, address: s.address, connectedAt: new Date(s.connectedAt).toISOString() })),
      bridges: [this.bridge.status()],
      policy: { statements: this.edgeHub.config.mqttBroker.authorizations?.length ?? null, desiredVersion: this.edgeHub.desiredVersion, lastDesiredStatus: this.lastDesiredStatus },
      ...(this.cluster ? { cluster: this.cluster.snapshot() } : {}),
    }
  }

  /** Graceful: stop accepting, close clients, flush persistence, remove broker.json. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pollTimer)
      for (const s of this.sessions.values()) clearTimeout(s.expiryTimer)
      this.iothub.close()
      clearTimeout(this.bridgeReportTimer)
      await this.bridge.close()
      await this.control?.close()
      await this.workload?.close()
      for (const server of this.servers) server.close()
      this.unwatchChanges?.()
      await new Promise<void>((resolve) => this.aedes.close(() => resolve()))
      await this.cluster?.close()
      await this.persistenceClose()
      if (this.opts.writeRuntimeFile ?? !this.opts.inMemory) removeRuntime(this.ctx.paths.brokerState)
      if (this.ownsContext) await this.ctx.close()
    })()
    return this.closing
  }
}

export function startEdgeBroker(opts: EdgeBrokerOptions): Promise<EdgeBroker> {
  return EdgeBroker.start(opts)
}
