/**
 * The edge hub broker: aedes assembled from injected parts (store, persistence, policy), with
 * IoT Hub authentication, the `$edgeHub` policy behind one front door, IoT Hub primitives,
 * and a loopback control API for the service side. `startEdgeBroker()` is what
 * `edgemq broker start` and `startHub()` call.
 */
import { once } from 'node:events'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { createServer as createHttpServer } from 'node:http'
import { serveMqttOverWebSocket, type MqttWebSocketOptions } from '../transports/websocket.js'
import { AmqpListener, isAmqpUpgrade } from '../transports/amqp.js'

import { Aedes, type PublishPacket } from 'aedes'
import mqemitter, { type MQEmitter } from 'mqemitter'
import type { Logger } from 'pino'

import { UpstreamBridge, type LocalPublisher } from '../bridge/bridge.js'
import type { DeadLetterOps } from '../bridge/dead-letters.js'
import { ForwardQueue } from '../bridge/queue.js'
import type { ClusterNode } from '../cluster/node.js'
import { attachClusterStore, openHub, readStorePointer, type HubContext } from '../config/home.js'
import { EdgeMqError } from '../errors.js'
import { createInMemoryHubPki, ensureHubPki, type HubPki } from '../pki/index.js'
import type { TwinKey } from '../registry/types.js'
import { brokerPersistence, cacheMqMatches, connectedClient, directDelivery, fastMqQueues, fastPacketWrites, pacedReads, skipClientNotices, writeFastTo } from './aedes-internals.js'
import { CONNACK } from './authenticate.js'
import { authError, Hooks, INERT_TOPIC, type AuthError } from './hooks.js'
import type { BrokerPublish, ClusterHost, HubEvent, IotHubHost, MethodResult } from './host.js'
import { BuiltinEndpoint } from '../eventhubs/endpoint.js'
import { serveEventHubs } from '../eventhubs/amqp.js'
import { setDpsAssignedHub } from '../dps/settings.js'
import { DpsEndpoint } from './dps.js'
import { installC2dAckTracking, installIotHubPacketRewrites, IotHub } from './iothub.js'
import { brokerSettings, ConnectionGate, loggableId, PACKET_HEADROOM, RefusalLog } from './limits.js'
import { installPacketGuard } from './packet-guard.js'
import { batchWrites } from './write-batching.js'
import { LiveConfig } from './live.js'
import { createLogger, type LogLevel } from './logger.js'
import { createPersistence } from './persistence.js'
import { startControlServer, type ControlServer } from './control.js'
import { verifyAmqpToken } from './service-auth.js'
import { serveIotHubOverAmqp } from './amqp-service.js'
import { SessionStore } from './session-store.js'
import { SessionTable, type Session } from './session.js'
import { startWorkloadServer, type WorkloadServer } from '../workload/server.js'
import { removeRuntime, writeRuntime, type BrokerRuntime } from './runtime.js'
import { batchedDefer } from '../util/defer.js'
import type { BrokerSettings } from '../registry/types.js'

export type { Session } from './session.js'
export { PRIVATE_PREFIX } from './pipeline.js'

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
  /** IoT Hub service REST over HTTPS (azure-iothub SDK) on `host`, with MQTT over WebSockets at
   *  `/$iothub/websocket` (device SDKs' MqttWs); 0 = a free port; null/absent = none. */
  restPort?: number | null
  /** MQTT over plain WebSockets (ws://host:port/$iothub/websocket, for local browser code); null/absent = none. */
  wsPort?: number | null
  /** AMQP over TLS (IoT Hub: 5671, the azure-iothub `Client`); 0 = a free port; null/absent = none. AMQP over
   *  WebSockets (AmqpWs) is served on the rest port whenever that is on. */
  amqpsPort?: number | null
  /** Plain AMQP (5672, emulator-style clients); null/absent = none. */
  amqpPort?: number | null
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
  /**
   * aedes' heartbeat (ms, default 60 s): a will left by a broker that died is published after about
   * 4× this. Tests make it short to sweep orphaned wills deterministically.
   */
  heartbeatIntervalMs?: number
  /** Overrides of the hub's broker settings for this run (limits; see README "Limits"). */
  settings?: Partial<BrokerSettings>
  /** The host DPS assigns devices to, accepted in their usernames and SAS tokens (persisted; default localhost). */
  dpsAssignedHub?: string
}


/**
 * Defers a subscriber's deliveries' writes (QoS 0 and clean-session QoS 1/2, directDelivery) to
 * the end of the current tick, in order: right after the socket read being handled, off its call
 * stack (aedes writes from a setImmediate per delivery). The written bytes (and the packets they
 * were made from) then stop living until the check phase; the delivery callbacks still come from
 * there (aedes-internals.ts afterIo).
 */
const afterTick = batchedDefer((run) => process.nextTick(run))

export class EdgeBroker implements IotHubHost, ClusterHost {
  readonly aedes: Aedes
  readonly log: Logger
  readonly ctx: HubContext
  readonly sessions = new SessionTable()
  readonly iothub: IotHub
  /** The Device Provisioning Service's MQTT endpoint (registration connections on the TLS port). */
  readonly dps: DpsEndpoint
  readonly bridge: UpstreamBridge
  readonly hooks: Hooks
  readonly live: LiveConfig
  /** The built-in Event Hubs-compatible endpoint: telemetry on `$upstream` (no parent set) is appended to its log. */
  readonly builtin: BuiltinEndpoint
  /** The AMQP endpoint (src/transports/amqp.ts): other features add addresses with `amqp.route()`. Listens only on the ports asked for. */
  readonly amqp: AmqpListener
  /** Persistent sessions: granted filters only, and the per-session queue bound (set once aedes listens). */
  sessionStore!: SessionStore
  ports: BrokerRuntime['ports'] = { control: 0 }
  host: string
  pki?: HubPki
  readonly maxMessageSize: number
  /** The hub's broker settings over the defaults, with this run's overrides. */
  readonly settings: BrokerSettings
  /** Refusals by reason (counted, logged once per reason a minute). */
  readonly refusals: RefusalLog
  readonly gate: ConnectionGate

  private debugPublish = false
  /** Set once any clean=false session subscribes (or the persistence holds one from before). */
  private persistentSessions = false
  private servers: NetServer[] = []
  private closeWebSockets?: () => void
  private control?: ControlServer
  private workload?: WorkloadServer
  private pollTimer?: NodeJS.Timeout
  private closing?: Promise<void>
  private readonly clockSkewSecs: number
  private readonly ownsContext: boolean
  private readonly persistenceClose: () => Promise<void>
  /** Set when this broker is a node of a Redis cluster. */
  readonly cluster?: ClusterNode
  private unwatchChanges?: () => void

  /** Built before aedes, so aedes' hooks bind to it directly (see start()). */
  private constructor(
    readonly opts: EdgeBrokerOptions,
    ctx: HubContext,
    aedes: () => Aedes,
    mq: MQEmitter,
    log: Logger,
    persistenceClose: () => Promise<void>,
    cluster?: ClusterNode,
  ) {
    this.ctx = ctx
    this.log = log
    this.host = opts.host ?? '127.0.0.1'
    this.clockSkewSecs = opts.clockSkewSecs ?? 300
    this.settings = brokerSettings(ctx.hub.broker, opts.settings)
    this.maxMessageSize = this.settings.maxMessageSize
    this.refusals = new RefusalLog(log)
    this.gate = new ConnectionGate(() => this.settings)
    this.ownsContext = !opts.context
    this.persistenceClose = persistenceClose
    this.cluster = cluster
    this.iothub = new IotHub(this)
    this.builtin = new BuiltinEndpoint({ file: opts.inMemory ? ':memory:' : ctx.paths.eventHubs, settings: this.settings, hub: ctx.hub, store: ctx.store, log })
    // Queued inside the publish hook and committed with the rest of the tick; the hook holds the
    // PUBACK until then (whenStored), so the event is in the log before the device gets it.
    this.iothub.events.on('event', (ev: HubEvent) => this.builtin.appendTelemetry(ev))
    this.dps = new DpsEndpoint({
      ctx,
      log,
      publish: (p) => this.publish(p),
      writeTwin: (key, update, replace) => this.iothub.updateTwin(key, update, { replace }),
      caPem: () => this.pki?.caPem,
    })
    this.hooks = new Hooks({
      ctx,
      log,
      sessions: this.sessions,
      iothub: this.iothub,
      dps: this.dps,
      policy: () => this.live.edgeHub.policy,
      caPem: () => this.pki?.caPem,
      clockSkewSecs: this.clockSkewSecs,
      maxMessageSize: this.maxMessageSize,
      settings: this.settings,
      refusals: this.refusals,
      persistBeforeAck: (packet, cb) => this.persistBeforeAck(packet, cb),
      whenStored: (cb) => this.builtin.whenStored(cb),
    })
    this.aedes = aedes()
    this.amqp = new AmqpListener({
      id: ctx.hub.hostName,
      log,
      maxMessageSize: this.maxMessageSize,
      maxConnections: this.settings.maxConnections,
      verifyToken: (token, _audience, hostname) => verifyAmqpToken(ctx.hub.policies, token, [ctx.hub.hostName, hostname ?? ''], this.clockSkewSecs),
    })
    serveIotHubOverAmqp(this.amqp, this.iothub)
    serveEventHubs(this.amqp, this.builtin)
    const queue = new ForwardQueue(opts.inMemory ? ':memory:' : ctx.paths.forward)
    const onStatus = () => this.live.onBridgeStatus()
    const inbound = this.bridgeInbound()
    this.bridge = cluster ? cluster.createBridge(inbound, mq, log, queue, onStatus) : new UpstreamBridge(inbound, mq, log, queue, onStatus)
    this.bridge.backoffBaseMs = this.settings.bridgeBackoffMs
    this.live = new LiveConfig({
      aedes: this.aedes,
      ctx,
      log,
      sessions: this.sessions,
      iothub: this.iothub,
      bridge: this.bridge,
      childrenOf: (id) => this.hooks.childrenOf(id),
      isClosing: () => this.closing !== undefined,
    })
  }

  static async start(opts: EdgeBrokerOptions): Promise<EdgeBroker> {
    if (opts.cluster && !opts.context && !opts.inMemory) await attachClusterStore(opts.home, opts.cluster)
    const ctx = opts.context ?? (await openHub({ home: opts.home, inMemory: opts.inMemory, createDefault: true }))
    try {
      if (opts.dpsAssignedHub) await setDpsAssignedHub(ctx, opts.dpsAssignedHub)
    } catch (err) {
      if (!opts.context) await ctx.close()
      throw err
    }
    const log = opts.logger ?? createLogger({ level: opts.logLevel })
    // Cluster node: Redis for the bus and MQTT state too (the registry already is, via the home's pointer).
    const clusterUrl = opts.context || opts.inMemory ? opts.cluster : (readStorePointer(opts.home)?.url ?? opts.cluster)
    let cluster: ClusterNode | undefined
    try {
      // Loaded only for a cluster node (ioredis, mqemitter-redis: ~0.1 s of start-up otherwise).
      cluster = clusterUrl ? await (await import('../cluster/node.js')).ClusterNode.create(clusterUrl, ctx.hub.name, log) : undefined
    } catch (err) {
      if (!opts.context) await ctx.close()
      throw err
    }
    fastPacketWrites()
    const persistence = cluster ? cluster.persistence : await createPersistence(opts.inMemory ? undefined : ctx.paths.persistence)
    let mq = opts.mq ?? cluster?.mq
    /** This node's own in-process bus: no other node reads aedes' `$SYS` notices from it. */
    const localMq = !mq
    if (!mq) {
      mq = mqemitter({ concurrency: 1000, matchEmptyLevels: true })
      fastMqQueues(mq)
      cacheMqMatches(mq)
    }
    // aedes.listen() (persistence setup, first heartbeat) is async; the hooks need the broker, so
    // the broker is made first with a factory for the aedes instance, and aedes listens after.
    // eslint-disable-next-line prefer-const -- assigned after the factory that reads it is made
    let self: EdgeBroker | undefined
    const make = () =>
      new Aedes({
        ...(cluster ? { id: cluster.nodeId } : {}),
        persistence: persistence.persistence as never,
        mq,
        // IoT Hub client ids: up to 128 (device) + 1 + 128 (module); aedes' default is 23 (MQTT 3.1 only;
        // hooks.preConnect applies the setting to every protocol level).
        maxClientsIdLength: brokerSettings(ctx.hub.broker, opts.settings).maxClientIdLength,
        queueLimit: 1000,
        concurrency: 1000,
        heartbeatInterval: opts.heartbeatIntervalMs ?? 60_000,
        connectTimeout: brokerSettings(ctx.hub.broker, opts.settings).connectTimeoutSecs * 1000,
        drainTimeout: brokerSettings(ctx.hub.broker, opts.settings).drainTimeoutSecs * 1000,
        authenticate: (client, username, password, done) => {
          hooksOf().authenticate(client, username, password).then(
            () => done(null, true),
            (err: AuthError) => done(err.returnCode ? err : authError(CONNACK.UNAVAILABLE), false),
          )
        },
        preConnect: (client, packet, cb) => {
          const refused = hooksOf().preConnect(client, packet)
          if (refused) return cb(refused, false)
          installIotHubPacketRewrites(client)
          cb(null, true)
        },
        authorizePublish: (client, packet, cb) => {
          // Cluster: aedes PUBACKs right after this hook, so hold it while the Redis bus is down.
          if (cluster && client) return cluster.whenBusOpen(() => hooksOf().authorizePublish(client, packet, cb))
          hooksOf().authorizePublish(client, packet, cb)
        },
        authorizeSubscribe: (client, sub, cb) => hooksOf().authorizeSubscribe(client, sub, cb),
        authorizeForward: (client, packet) => hooksOf().authorizeForward(client, packet),
      })
    const hooksOf = () => (self as EdgeBroker).hooks
    self = new EdgeBroker(opts, ctx, make, mq, log, persistence.close, cluster)
    try {
      await self.aedes.listen()
      if (localMq) skipClientNotices(self.aedes)
      self.guardPersistence()
      await self.listen()
    } catch (err) {
      await self.close()
      throw err
    }
    return self
  }

  /** Messages the bridge received from the parent and refused here (see bridgeInbound). */
  bridgeRefused = 0

  /**
   * What the bridge publishes locally (its `in` rules) goes through the same pipeline as any
   * publish, as this hub's edge device (the identity the bridge connects upstream with): `$iothub/…`,
   * C2D and module inputs are never reachable from the parent, other topics only where the
   * policy lets the edge device publish. Synchronous, so messages keep their order.
   */
  private bridgeInbound(): LocalPublisher {
    const publish: LocalPublisher['publish'] = (packet, done) => {
      const cb = typeof done === 'function' ? done : undefined
      const identity = { clientId: this.ctx.hub.edgeDeviceId, deviceId: this.ctx.hub.edgeDeviceId }
      const actor = { identity, authz: this.live.edgeHub.policy?.forIdentity(identity) }
      const v = this.hooks.decideInbound(actor, packet.topic, packet.qos ?? 0, (packet.payload as Buffer | undefined)?.length ?? 0)
      if (v.kind !== 'allow') {
        this.bridgeRefused++
        return cb?.(undefined)
      }
      // Not routed as telemetry: it came from `$upstream`, and routing would send it back there.
      this.aedes.publish(packet, cb as never)
    }
    return { publish } as LocalPublisher
  }

  /** aedes creates its persistence in listen(): wrap it then, before any client connects. */
  private guardPersistence(): void {
    const cluster = this.cluster
    this.sessionStore = new SessionStore(brokerPersistence(this.aedes), {
      granted: (clientId, filter) => this.sessions.byClientId(clientId)?.granted.has(filter) ?? false,
      connected: (clientId) => connectedClient(this.aedes, clientId) !== undefined,
      bound: () => ({ maxQueued: this.ctx.hub.broker.maxQueued, whenFull: this.ctx.hub.broker.whenFull }),
      onDrop: (clientId, topic, whenFull) => this.log.debug({ client: clientId, topic, whenFull }, 'session queue full: message dropped'),
      // A cluster node's queues live in Redis and are bounded there, across nodes.
      ...(cluster?.persistence.queue ? { shared: cluster.persistence.queue } : {}),
    })
  }

  get hubName(): string {
    return this.ctx.hub.name
  }

  get writesRuntimeFile(): boolean {
    return this.opts.writeRuntimeFile ?? !this.opts.inMemory
  }

  /** The bridge's dead-letter store (control API). */
  get deadLetters(): DeadLetterOps {
    return this.bridge.deadLetters
  }

  /** `$upstream` for the IoT Hub primitives: the bridge when a parent is set. */
  get upstream(): IotHubHost['upstream'] {
    return this.bridge
  }

  get edgeHub() {
    return this.live.edgeHub
  }

  get lastDesiredStatus() {
    return this.live.lastDesiredStatus
  }

  invokeRemote(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number, notOnline: Error): Promise<MethodResult> {
    if (!this.cluster) return Promise.reject(notOnline)
    return this.cluster.invokeMethod(key, methodName, payload, timeoutSecs, notOnline as never)
  }

  invokeMethodLocally(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number): Promise<MethodResult> {
    return this.iothub.invokeMethod(key, methodName, payload, timeoutSecs, { local: true })
  }

  /** The TLS identity: given, else in memory for in-memory hubs (nothing on disk), else the home's pki/. */
  private async hubPki(): Promise<HubPki> {
    if (this.opts.pki) return this.opts.pki
    if (this.opts.inMemory) return createInMemoryHubPki({ hubName: this.hubName })
    return ensureHubPki(this.ctx.paths.pki, { hubName: this.hubName })
  }

  private async listen(): Promise<void> {
    const { opts } = this
    const stored = brokerPersistence(this.aedes)
    if (stored.countOffline) this.persistentSessions = (await stored.countOffline()).subsCount > 0
    if (this.ctx.createdHub) this.log.info({ hub: this.hubName, edgeDevice: this.ctx.hub.edgeDeviceId, home: this.ctx.home }, 'created a new hub in this home')
    await this.live.start()
    this.wireEvents()

    const listenOn = async (server: NetServer, port: number, what: string): Promise<number> => {
      server.listen(port, this.host)
      try {
        await once(server, 'listening')
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EADDRINUSE') {
          const flag = { mqtt: 'port', mqtts: 'tls-port', ws: 'ws-port', amqps: 'amqps-port', amqp: 'amqp-port' }[what] ?? what
          throw new EdgeMqError(`port ${port} (${what}) is already in use`, { hint: `stop what uses it, or pick another port (e.g. --${flag} 0 for a free one)` })
        }
        if (code === 'EACCES') throw new EdgeMqError(`no permission to listen on port ${port} (${what})`, { hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a higher port' })
        throw err
      }
      this.servers.push(server)
      // Out of file descriptors (EMFILE on accept) and the like: logged, never a crash.
      server.on('error', (err) => this.log.warn({ err: err.message, listener: what }, 'listener error'))
      return (server.address() as AddressInfo).port
    }

    if (opts.port !== null) {
      const server = createNetServer((socket) => this.accept(socket))
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
        (socket) => this.accept(socket),
      )
      server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'))
      this.ports.mqtts = await listenOn(server, opts.tlsPort ?? 8883, 'mqtts')
    } else if (!opts.inMemory || (opts.restPort ?? null) !== null || (opts.amqpsPort ?? null) !== null) {
      this.pki = await this.hubPki().catch(() => undefined)
    }
    // MQTT over WebSockets: the same aedes, so the same authentication, policy and limits as 1883/8883.
    const mqttOverWebSocket: MqttWebSocketOptions = {
      // The same gate, packet guard and QoS 0 bound as TCP: they use only the stream side of a
      // Socket and its remoteAddress, which the WebSocket stream carries.
      onStream: (stream) => this.accept(stream as unknown as Socket),
      maxPayload: this.maxMessageSize + 64 * 1024,
      onRefused: (reason) => this.log.debug({ reason }, 'WebSocket upgrade refused'),
      // AMQP over WebSockets (AmqpWs, Event Hubs clients) on the same port, by its subprotocol.
      otherUpgrade: (req, socket, head) => {
        if (!isAmqpUpgrade(req)) return false
        this.amqp.acceptUpgrade(req, socket, head)
        return true
      },
    }
    // The service REST API over HTTPS (what the azure-iothub SDK dials), same handlers as the control API;
    // like IoT Hub's 443 it also upgrades /$iothub/websocket to MQTT.
    const rest =
      (opts.restPort ?? null) !== null && this.pki
        ? { port: opts.restPort as number, host: this.host, key: this.pki.serverKeyPem, cert: this.pki.serverCertPem, ca: this.pki.caPem, mqttOverWebSocket }
        : undefined
    this.control = await startControlServer(this, { port: opts.controlPort ?? 0, rest })
    if (this.control.restPort !== undefined) this.ports.rest = this.control.restPort
    this.ports.control = this.control.port
    if ((opts.wsPort ?? null) !== null) {
      const server = createHttpServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSockets: upgrade /$iothub/websocket\n'))
      this.closeWebSockets = serveMqttOverWebSocket(server, mqttOverWebSocket)
      this.ports.ws = await listenOn(server, opts.wsPort as number, 'ws')
    }
    if ((opts.amqpsPort ?? null) !== null) {
      const pki = this.pki ?? (await this.hubPki())
      const server = createTlsServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (socket) => this.amqp.accept(socket))
      server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'AMQP TLS handshake failed'))
      this.ports.amqps = await listenOn(server, opts.amqpsPort as number, 'amqps')
    }
    if ((opts.amqpPort ?? null) !== null) {
      this.ports.amqp = await listenOn(createNetServer((socket) => this.amqp.accept(socket)), opts.amqpPort as number, 'amqp')
    }
    // The IoT Edge workload API (issue 11): modules started by `module run --mode workload` sign their SAS tokens here.
    this.workload = await startWorkloadServer({
      edgeDeviceId: () => this.ctx.hub.edgeDeviceId,
      lookupModule: (d, m) => this.ctx.store.getModule(d, m),
      trustBundle: async () => (this.pki ?? (await this.hubPki())).caPem,
      port: opts.workloadPort ?? 0,
      log: this.log,
    })
    this.ports.workload = this.workload.port

    this.pollTimer = setInterval(() => void this.live.poll(), opts.pollMs ?? 200)
    this.pollTimer.unref()
    // A store that pushes (Redis pub/sub) wakes the follower at once; the poll stays as the backstop.
    this.unwatchChanges = await this.ctx.store.watch?.(() => void this.live.poll())
    await this.cluster?.attach(this)
    if (this.writesRuntimeFile) writeRuntime(this.ctx.paths.brokerState, this.runtime())
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

  /**
   * Every MQTT connection comes in here: counted against the connection limits, then handed to
   * aedes behind a packet guard (packet-guard.ts) and a bound on unsent QoS 0 bytes.
   */
  private accept(socket: Socket): void {
    const { refused, evicted } = this.gate.admit(socket)
    if (evicted) this.refusals.note('max-pending-connections', { ...this.gate.counts, address: evicted.remoteAddress }, 'connection without CONNECT closed: too many pending (the oldest goes)')
    if (refused) {
      this.refusals.note(refused, { ...this.gate.counts, address: socket.remoteAddress }, 'connection refused: too many connections')
      socket.destroy()
      return
    }
    // No Nagle: writes are already batched per tick (batchWrites), and Nagle held a QoS 1 delivery
    // back until the subscriber's ACK of the previous one (latency p50 at 2k msg/s 2–3 ms with it,
    // 0.2–0.3 without). MQTT over WebSockets comes as a stream without it (node's HTTP server already
    // sets it on the socket underneath).
    ;(socket as Partial<Socket>).setNoDelay?.(true)
    batchWrites(socket)
    writeFastTo(socket)
    const client = this.aedes.handle(socket)
    const { maxConnectPacketBytes, maxQueuedBytes } = this.settings
    installPacketGuard(client, {
      preConnect: maxConnectPacketBytes,
      connected: this.maxMessageSize + PACKET_HEADROOM,
      onIssue: (issue) => {
        const fields = { client: loggableId(client.id), address: socket.remoteAddress }
        if (issue.kind === 'bad-protocol-level') this.refusals.note('bad-protocol-level', { ...fields, level: issue.level }, 'CONNECT refused: unknown protocol level (CONNACK 0x01)')
        else this.refusals.note('packet-too-large', { ...fields, ...issue }, 'connection closed: packet larger than allowed (or malformed length)')
      },
    })
    // A publisher is read on once its last read is handled (its QoS 1 deliveries written or drained).
    // Past the drain timeout, a QoS 1 delivery that still waits has failed (aedes closes the subscriber).
    pacedReads(client, this.settings.drainTimeoutSecs * 1000 + 1000)
    // A subscriber that does not read must not hold up the others nor the publisher: QoS 0 to it is
    // dropped once its unsent bytes pass the bound, and delivery never waits for its socket to drain.
    // `scheduled`: bytes admitted and not yet written (the write comes at the end of the tick), so
    // the bound holds for a burst too; once written they are in the socket's writableLength.
    let scheduled = 0
    directDelivery(client, {
      deferWrite: afterTick,
      admit: (p) => {
        const size = (p.payload?.length ?? 0) + p.topic.length + 8
        if (socket.writableLength + scheduled + size > maxQueuedBytes) {
          this.qos0Dropped++
          this.refusals.note('qos0-dropped', { client: loggableId(client.id), unsentBytes: socket.writableLength + scheduled }, 'QoS 0 message dropped: subscriber is not reading')
          return -1
        }
        scheduled += size
        return size
      },
      sent: (size) => (scheduled -= size),
    })
    // After directDelivery: it wraps the delivery that replaced aedes' own.
    installC2dAckTracking(client, (topic) => {
      const s = this.sessions.of(client)
      if (s) this.iothub.acked(s, topic)
    })
  }

  /** QoS 0 messages dropped for subscribers over `maxQueuedBytes`. */
  qos0Dropped = 0

  private wireEvents(): void {
    const a = this.aedes
    a.on('subscribe', (subs, client) => {
      if (!client.clean) this.persistentSessions = true
      const s = this.sessions.of(client)
      if (s) this.iothub.subscribed(s, subs.map((x) => x.topic))
    })
    // 'client' (registered, CONNACK follows), not 'clientReady': aedes emits clientReady only after
    // the offline queue is flushed, and a client that publishes and disconnects at once (mosquitto_pub)
    // is gone by then, so its connect line was never logged. 'client' pairs with 'clientDisconnect'.
    a.on('client', (client) => {
      this.gate.accepted(client.conn as Socket)
      const s = this.sessions.of(client)
      if (!s) return
      s.registered = true
      this.sessionStore.connected(client.id)
      if (this.log.isLevelEnabled('info')) this.log.info({ client: client.id, auth: s.method, address: s.address }, 'client connected')
      if (s.expiresAt !== undefined) {
        const ms = (s.expiresAt + this.clockSkewSecs) * 1000 - Date.now()
        s.expiryTimer = setTimeout(() => {
          this.log.info({ client: client.id }, 'SAS token expired: closing the session')
          client.close()
        }, Math.max(0, Math.min(ms, 2 ** 31 - 1)))
        s.expiryTimer.unref()
      }
    })
    // The session ends here, after aedes has authorized and published the client's will; not at
    // 'clientError' (keep-alive timeout, reset), which comes first and would orphan the will.
    a.on('clientDisconnect', (client) => {
      this.sessions.end(client)
      this.log.info({ client: client.id }, 'client disconnected')
    })
    // A device's PUBACK of a C2D message completes it (delivery feedback).
    a.on('ack', (packet, client) => {
      const s = client ? this.sessions.of(client) : undefined
      if (s && packet && 'topic' in packet) this.iothub.acked(s, packet.topic)
    })
    a.on('clientError', (client, err) => this.log.info({ client: loggableId(client.id), reason: err.message }, 'client dropped'))
    // aedes reports persistence and will-sweep failures here; unhandled, an 'error' event would end the process.
    ;(a as unknown as NodeJS.EventEmitter).on('error', (err: Error) => this.log.warn({ err: err.message }, 'broker error'))
    a.on('connectionError', (client, err) => this.log.info({ client: client?.id, reason: err.message }, 'connection error'))
    if (this.log.isLevelEnabled('debug')) {
      this.debugPublish = true
      a.on('publish', (packet, client) => {
        if (client && packet.topic !== INERT_TOPIC) this.log.debug({ client: client.id, topic: packet.topic, qos: packet.qos, retain: packet.retain, bytes: packet.payload.length }, 'PUBLISH')
      })
      a.on('subscribe', (subs, client) => this.log.debug({ client: client.id, subscriptions: subs.map((x) => `${x.topic}@${x.qos}`) }, 'SUBSCRIBE'))
      a.on('unsubscribe', (topics, client) => this.log.debug({ client: client.id, topics }, 'UNSUBSCRIBE'))
      a.on('ping', (_p, client) => this.log.debug({ client: client.id }, 'PINGREQ'))
      a.on('connackSent', (packet, client) => this.log.debug({ client: client.id, returnCode: packet.returnCode }, 'CONNACK'))
    }
  }

  /**
   * The pipeline's last step. aedes writes a QoS1 PUBACK *before* it stores a retained message,
   * queues the message for offline persistent sessions or hands it to the bridge: a crash in
   * between would lose an acknowledged message. So edgemq publishes the message itself first
   * (store, deliver, queue), and only then lets aedes go on with an inert copy: aedes still sends
   * the PUBACK (same packet id) and publishes that copy to a topic nobody can subscribe to.
   * In a cluster every QoS1 message goes this way: the message is safe once Redis has it, and a
   * node only learns that Redis went away when its socket closes; a PUBACK written in between
   * acknowledged a message held in this node's memory. The bus drops the inert copy.
   */
  private persistBeforeAck(packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (packet.qos !== 1) return cb(null)
    if (this.cluster) return this.publishBeforeAck(packet, cb)
    // Only a retained message, a persistent session or the bridge keeps a message past a crash;
    // with none of them aedes' own order loses nothing that could have been kept.
    if (packet.retain || this.bridge.forwardsOut) return this.publishBeforeAck(packet, cb)
    if (!this.persistentSessions) return cb(null)
    // A persistent session keeps only what its stored QoS1 filters match (an in-memory trie lookup).
    brokerPersistence(this.aedes)
      .subscriptionsByTopic(packet.topic)
      .then(
        (subs) => (subs.length > 0 ? this.publishBeforeAck(packet, cb) : cb(null)),
        () => this.publishBeforeAck(packet, cb),
      )
  }

  private publishBeforeAck(packet: PublishPacket, cb: (err?: Error | null) => void): void {
    if (this.debugPublish) this.log.debug({ topic: packet.topic, qos: packet.qos, retain: packet.retain, bytes: packet.payload.length }, 'PUBLISH')
    const copy = { cmd: 'publish' as const, topic: packet.topic, payload: packet.payload, qos: 1 as const, retain: packet.retain, dup: false }
    this.aedes.publish(copy, (err) => {
      if (err) return cb(err)
      packet.topic = INERT_TOPIC
      packet.retain = false
      cb(null)
    })
  }

  /** The subscriptions a persistent session keeps in persistence (IotHubHost: is a C2D kept for it?). */
  async storedSubscriptions(clientId: string): Promise<{ topic: string; qos: number }[]> {
    return (await brokerPersistence(this.aedes).subscriptionsByClient({ id: clientId })) ?? []
  }

  /** Broker-originated publish (IoT Hub responses, C2D, routed messages). */
  publish(packet: BrokerPublish): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish(
        { cmd: 'publish', topic: packet.topic, payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), qos: packet.qos ?? 0, retain: packet.retain ?? false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      )
    })
  }

  status() {
    const { maxQueued, whenFull } = this.ctx.hub.broker
    return {
      hub: this.hubName,
      pid: process.pid,
      host: this.host,
      ports: this.ports,
      clients: [...this.sessions.values()].map((s: Session) => ({ clientId: s.identity.clientId, auth: s.method, address: s.address, connectedAt: new Date(s.connectedAt).toISOString() })),
      sessions: { maxQueued, whenFull, dropped: this.sessionStore.droppedTotal, droppedByClient: Object.fromEntries(this.sessionStore.dropped) },
      limits: { connections: this.gate.counts, qos0Dropped: this.qos0Dropped, refused: this.refusals.counts },
      bridges: [{ ...this.bridge.status(), refusedIn: this.bridgeRefused }],
      policy: { statements: this.edgeHub.config.mqttBroker.authorizations?.length ?? null, desiredVersion: this.edgeHub.desiredVersion, lastDesiredStatus: this.lastDesiredStatus },
      ...(this.cluster ? { cluster: this.cluster.snapshot() } : {}),
    }
  }

  /** Graceful: stop accepting, close clients, flush persistence, remove broker.json. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.pollTimer)
      this.sessions.clearTimers()
      this.iothub.close()
      this.dps.close()
      this.live.close()
      await this.bridge.close()
      await this.control?.close()
      await this.workload?.close()
      this.closeWebSockets?.()
      this.amqp.close()
      for (const server of this.servers) server.close()
      this.unwatchChanges?.()
      const drain = async () => {
        await new Promise<void>((resolve) => this.aedes.close(() => resolve()))
        await this.cluster?.close()
        await this.persistenceClose()
        this.builtin.close()
      }
      // A cluster node stops within a bounded time even when Redis is gone (see ClusterNode.shutdown).
      await (this.cluster ? this.cluster.shutdown(drain) : drain())
      if (this.writesRuntimeFile) removeRuntime(this.ctx.paths.brokerState)
      if (this.ownsContext) await this.ctx.close()
    })()
    return this.closing
  }
}

export function startEdgeBroker(opts: EdgeBrokerOptions): Promise<EdgeBroker> {
  return EdgeBroker.start(opts)
}
