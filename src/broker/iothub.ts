/**
 * IoT Hub primitives served by the broker (PROTOCOL.md §4–§5): twin GET / reported PATCH /
 * desired notifications, direct methods, C2D, telemetry with routes to `$upstream` (the event
 * stream `edgemq monitor` reads) and to module inputs.
 *
 * Isolation: every client subscribes to the same `$iothub/twin/res/#`, yet must see only its
 * own responses. As edgeHub did, each such subscription is rewritten to a private namespace
 * `$edgemq/<client>/…`, responses are published there, and the topic is rewritten back on
 * delivery (authorizeForward). No other client can subscribe to `$edgemq/…` (policy: `$` topics).
 */
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'

import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes'

import type { EdgeHubConfig } from '../edgehub/config.js'
import { EdgeMqError, NotFoundError, TimeoutError } from '../errors.js'
import {
  formatC2dTopic,
  formatMethodRequestTopic,
  formatModuleInputTopic,
  formatTelemetryTopic,
  formatTwinDesiredTopic,
  formatTwinResponseTopic,
  iotHubSubscriptionKind,
  parseIotHubTopic,
  type SystemProperties,
} from '../iothub/index.js'
import type { TwinKey, TwinRecord } from '../registry/types.js'
import { compileRoutes, routeMessage, type Route, type RoutableMessage } from '../routes/index.js'
import { applyReportedPatch, desiredPatchNotification, parseTwinJson, twinResponseBody, updateTwin, type Twin, type TwinObject } from '../twin/index.js'
import type { EdgeBroker, Session } from './broker.js'

const PRIVATE_PREFIX = '$edgemq/'

/** Client ids may hold `/ + #` (modules, IoT Hub's id alphabet): escape them into one topic level. */
export function encodeClientLevel(clientId: string): string {
  return clientId.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/\+/g, '%2B').replace(/#/g, '%23')
}

function privateTopic(clientId: string, topic: string): string {
  return `${PRIVATE_PREFIX}${encodeClientLevel(clientId)}/${topic}`
}

/**
 * Packet rewrites that must happen before aedes sees a packet (installed from preConnect):
 * - the seed publishes twin requests as `$iothub/twin/GET/?rid=<r>/#` (PROTOCOL.md §4: accept
 *   it), and aedes refuses any PUBLISH topic holding `#`/`+` before a hook runs, so the wildcard
 *   junk after the request id is cut off;
 * - UNSUBSCRIBE from `$iothub/twin/res/#`, `…/PATCH/properties/desired/#` or
 *   `$iothub/methods/POST/#` must drop the private subscription onSubscribe made instead.
 */
export function installIotHubPacketRewrites(client: Client): void {
  const parser = (client as unknown as { _parser?: EventEmitter })._parser
  parser?.prependListener('packet', (packet: { cmd?: string; topic?: unknown; unsubscriptions?: unknown }) => {
    if (packet.cmd === 'publish' && typeof packet.topic === 'string' && packet.topic.startsWith('$iothub/')) {
      const q = packet.topic.indexOf('?')
      const slash = q < 0 ? -1 : packet.topic.indexOf('/', q)
      if (slash >= 0 && /[#+]/.test(packet.topic.slice(slash))) packet.topic = packet.topic.slice(0, slash)
    } else if (packet.cmd === 'unsubscribe' && Array.isArray(packet.unsubscriptions) && typeof client.id === 'string') {
      packet.unsubscriptions = packet.unsubscriptions.map((f: unknown) => (typeof f === 'string' && PRIVATE_KINDS.has(iotHubSubscriptionKind(f)) ? privateTopic(client.id, f) : f))
    }
  })
}

/** Subscriptions onSubscribe moves into the client's private namespace. */
const PRIVATE_KINDS = new Set<ReturnType<typeof iotHubSubscriptionKind>>(['twin-response', 'twin-desired', 'method-request'])

function clientIdOf(key: TwinKey): string {
  return key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId
}

/** A telemetry message on the hub's event stream (what `monitor` prints). */
export interface HubEvent {
  deviceId: string
  moduleId?: string
  properties: Record<string, string>
  systemProperties: SystemProperties
  payload: Buffer
  enqueuedTime: string
  /** Route that delivered it to `$upstream`. */
  route?: string
  /** A module output: its name, and the sinks the routes sent it to (`$upstream`, `<module>/<input>`). */
  outputName?: string
  routedTo?: string[]
}

export interface MethodResult {
  status: number
  payload: unknown
}

interface PendingMethod {
  clientId: string
  resolve(r: MethodResult): void
  timer: NodeJS.Timeout
}

/** The default route IoT Edge deployments ship with, used while `$edgeHub` declares none. */
const DEFAULT_ROUTES = { default: 'FROM /messages/* INTO $upstream' }

export class IotHub {
  /** Telemetry reaching `$upstream` ('event') and module outputs ('output'), for monitor. */
  readonly events = new EventEmitter()
  private routes: Route[] = compileRoutes(DEFAULT_ROUTES).routes
  private readonly pendingMethods = new Map<string, PendingMethod>()
  /** Last desired `$version` each client was told about, so the change feed does not repeat a push. */
  private readonly notifiedDesired = new Map<string, number>()

  constructor(private readonly broker: EdgeBroker) {
    this.events.setMaxListeners(0)
  }

  configure(config: EdgeHubConfig): void {
    const declared = Object.keys(config.routes).length > 0
    const compiled = compileRoutes(declared ? config.routes : DEFAULT_ROUTES)
    this.routes = compiled.routes
  }

  close(): void {
    for (const p of this.pendingMethods.values()) clearTimeout(p.timer)
    this.pendingMethods.clear()
  }

  // ---- MQTT side ----

  /** 'handled' = a request we answered; 'deny' = disconnect; 'pass' = let the policy decide. */
  onPublish(s: Session, packet: PublishPacket): 'handled' | 'deny' | 'pass' {
    const topic = packet.topic
    if (topic.startsWith(PRIVATE_PREFIX)) return 'deny'
    const parsed = parseIotHubTopic(topic)
    if (parsed.kind === 'user') return 'pass'
    // PROTOCOL.md §4: QoS 2 on IoT Hub topics is refused, as IoT Hub does.
    if (packet.qos === 2) {
      this.broker.log.info({ client: s.identity.clientId, topic }, 'QoS 2 on an IoT Hub topic: disconnecting')
      return 'deny'
    }
    const id = s.identity
    switch (parsed.kind) {
      case 'telemetry': {
        const own = parsed.deviceId === id.deviceId && parsed.moduleId === id.moduleId
        // Nested edge: a child edge device forwards its devices' and modules' telemetry as theirs.
        const actingFor = !own && s.actsFor !== undefined && (s.actsFor.has(parsed.deviceId) || (parsed.deviceId === id.deviceId && parsed.moduleId !== undefined))
        if (own || actingFor) {
          this.routeTelemetry({
            deviceId: parsed.deviceId,
            moduleId: parsed.moduleId,
            outputName: parsed.systemProperties.outputName,
            properties: parsed.properties,
            systemProperties: parsed.systemProperties,
            body: packet.payload as Buffer,
          })
        }
        return actingFor ? 'handled' : 'pass'
      }
      case 'twin-get':
        void this.twinGet(s, parsed.rid, parsed.ridKey)
        return 'handled'
      case 'twin-patch-reported':
        void this.twinReported(s, parsed.rid, parsed.ridKey, packet.payload as Buffer)
        return 'handled'
      case 'method-response':
        this.methodResponse(s, parsed.rid, parsed.status, packet.payload as Buffer)
        return 'handled'
      case 'invalid':
        if (topic.startsWith('$iothub/')) {
          this.broker.log.info({ client: id.clientId, topic, reason: parsed.reason }, 'invalid IoT Hub topic: disconnecting')
          return 'deny'
        }
        return 'pass'
      default:
        // c2d / module-input / responses published BY a client: only the hub sends these.
        return topic.startsWith('$') ? 'deny' : 'pass'
    }
  }

  /** Rewrites the client's own response subscriptions into its private namespace. */
  onSubscribe(s: Session, sub: Subscription): Subscription | null | undefined {
    const kind = iotHubSubscriptionKind(sub.topic)
    if (PRIVATE_KINDS.has(kind)) {
      return { ...sub, topic: privateTopic(s.identity.clientId, sub.topic), qos: Math.min(sub.qos, 1) as 0 | 1 }
    }
    if (sub.topic.startsWith(PRIVATE_PREFIX)) return null
    if (kind === 'c2d' || kind === 'module-input') sub.qos = Math.min(sub.qos, 1) as 0 | 1
    return undefined
  }

  onForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const prefix = `${PRIVATE_PREFIX}${encodeClientLevel(client.id)}/`
    if (!packet.topic.startsWith(prefix)) return null
    return Object.assign(Object.create(Object.getPrototypeOf(packet) as object) as AedesPublishPacket, packet, { topic: packet.topic.slice(prefix.length) })
  }

  private respond(clientId: string, topic: string, body: unknown): Promise<void> {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
    return this.broker.publish({ topic: privateTopic(clientId, topic), payload, qos: 0 }).catch((err: unknown) => {
      this.broker.log.warn({ client: clientId, err: (err as Error).message }, 'could not deliver an IoT Hub response')
    })
  }

  private key(s: Session): TwinKey {
    return s.identity.moduleId ? { deviceId: s.identity.deviceId, moduleId: s.identity.moduleId } : { deviceId: s.identity.deviceId }
  }

  private async twinGet(s: Session, rid: string, ridKey: '$rid' | 'rid'): Promise<void> {
    const twin = await this.broker.ctx.store.getTwin(this.key(s))
    if (!twin) return this.respond(s.identity.clientId, formatTwinResponseTopic(404, rid, ridKey), { message: 'twin not found' })
    this.notifiedDesired.set(s.identity.clientId, twin.desiredVersion)
    await this.respond(s.identity.clientId, formatTwinResponseTopic(200, rid, ridKey), twinResponseBody(twin as Twin))
  }

  private async twinReported(s: Session, rid: string, ridKey: '$rid' | 'rid', payload: Buffer): Promise<void> {
    const clientId = s.identity.clientId
    try {
      const patch = parseTwinJson(payload, 'reported properties patch')
      const twin = await this.broker.ctx.store.updateTwin(this.key(s), (t) => applyReportedPatch(t as Twin, patch) as TwinRecord, 'reported')
      await this.respond(clientId, formatTwinResponseTopic(204, rid, ridKey, twin.reportedVersion), undefined)
    } catch (err) {
      const status = err instanceof EdgeMqError && err.exitCode === 2 ? 400 : err instanceof NotFoundError ? 404 : 500
      this.broker.log.info({ client: clientId, status, reason: (err as Error).message }, 'reported patch refused')
      await this.respond(clientId, formatTwinResponseTopic(status, rid, ridKey), { message: (err as Error).message })
    }
  }

  /** Desired changed by another process (change feed): push the whole desired section. */
  async desiredChanged(key: TwinKey): Promise<void> {
    const clientId = clientIdOf(key)
    if (!this.broker.sessions.has(clientId)) return
    const twin = await this.broker.ctx.store.getTwin(key)
    if (!twin || (this.notifiedDesired.get(clientId) ?? 0) >= twin.desiredVersion) return
    await this.notifyDesired(clientId, twin.desired as TwinObject, twin.desiredVersion)
  }

  private async notifyDesired(clientId: string, patch: TwinObject, version: number): Promise<void> {
    this.notifiedDesired.set(clientId, Math.max(version, this.notifiedDesired.get(clientId) ?? 0))
    await this.respond(clientId, formatTwinDesiredTopic(version), desiredPatchNotification(patch, version))
  }

  // ---- service side (control API, startHub) ----

  /** Service twin update (desired and/or tags); a desired patch reaches a connected client at once. */
  async updateTwin(key: TwinKey, update: { desired?: unknown; tags?: unknown }, opts: { ifMatch?: string; replace?: boolean } = {}): Promise<TwinRecord> {
    const twin = await this.broker.ctx.store.updateTwin(key, (t) => updateTwin(t as Twin, update, opts) as TwinRecord, update.desired !== undefined ? 'desired' : 'tags')
    if (update.desired !== undefined && key.moduleId !== '$edgeHub') {
      const clientId = clientIdOf(key)
      if (this.broker.sessions.has(clientId)) await this.notifyDesired(clientId, update.desired as TwinObject, twin.desiredVersion)
    }
    return twin
  }

  isConnected(key: TwinKey): boolean {
    return this.broker.sessions.has(clientIdOf(key))
  }

  /** A direct method round trip (PROTOCOL.md §4). 404 when not connected, 504 on timeout. */
  invokeMethod(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number, opts: { local?: boolean } = {}): Promise<MethodResult> {
    const clientId = clientIdOf(key)
    const s = this.broker.sessions.get(clientId)
    const subscribed = s && Object.keys((s.client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions ?? {}).some((f) => f.startsWith(privateTopic(clientId, '$iothub/methods/POST')))
    if (!s || !subscribed) {
      const notOnline = new NotFoundError(`${key.moduleId ? 'module' : 'device'} "${clientId}" is not online (not connected, or not subscribed to $iothub/methods/POST/#)`, 'start the device first, e.g. `edgemq method serve --device …`')
      // Cluster: the device may be connected to another node; it runs the call there (`local`: no second hop).
      if (this.broker.cluster && !opts.local) return this.broker.cluster.invokeMethod(key, methodName, payload, timeoutSecs, notOnline)
      return Promise.reject(notOnline)
    }
    const rid = randomUUID().replace(/-/g, '').slice(0, 16)
    return new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingMethods.delete(rid)
        reject(new TimeoutError(`${clientId} did not answer method "${methodName}" within ${timeoutSecs} s`))
      }, timeoutSecs * 1000)
      this.pendingMethods.set(rid, { clientId, resolve, timer })
      const body = payload === undefined ? 'null' : JSON.stringify(payload)
      this.respond(clientId, formatMethodRequestTopic(methodName, rid), body).catch(() => undefined)
    })
  }

  private methodResponse(s: Session, rid: string, status: number, payload: Buffer): void {
    const p = this.pendingMethods.get(rid)
    if (!p || p.clientId !== s.identity.clientId) {
      this.broker.log.debug({ client: s.identity.clientId, rid }, 'method response with no pending call')
      return
    }
    this.pendingMethods.delete(rid)
    clearTimeout(p.timer)
    let body: unknown = null
    const text = payload.toString('utf8')
    if (text.length > 0) {
      try {
        body = JSON.parse(text)
      } catch {
        body = text
      }
    }
    p.resolve({ status, payload: body })
  }

  /** C2D: QoS 1 to the device's devicebound topic; queued by a persistent session while offline. */
  async sendC2d(deviceId: string, data: Buffer, properties: Record<string, string> = {}, sys: SystemProperties = {}): Promise<string> {
    await this.broker.ctx.registry.getDevice(deviceId)
    const messageId = sys.messageId ?? randomUUID()
    const topic = formatC2dTopic(deviceId, properties, { ...sys, messageId, to: `/devices/${deviceId}/messages/devicebound` })
    await this.broker.publish({ topic, payload: data, qos: 1 })
    return messageId
  }

  /** Deliver to a module input as edgeHub does for a BrokeredEndpoint route. */
  async sendModuleInput(deviceId: string, moduleId: string, inputName: string, data: Buffer, properties: Record<string, string> = {}, sys: SystemProperties = {}): Promise<void> {
    await this.broker.ctx.registry.getModule(deviceId, moduleId)
    await this.broker.publish({ topic: formatModuleInputTopic(deviceId, moduleId, inputName, properties, sys), payload: data, qos: 1 })
  }

  /** Routes a telemetry message or module output (PROTOCOL.md §5). */
  routeTelemetry(msg: RoutableMessage): void {
    const enqueuedTime = new Date().toISOString()
    const body = Buffer.isBuffer(msg.body) ? msg.body : Buffer.from(msg.body)
    let sinks
    try {
      sinks = routeMessage(this.routes, { ...msg, enqueuedTime })
    } catch (err) {
      this.broker.log.warn({ err: (err as Error).message }, 'route evaluation failed')
      sinks = undefined
    }
    const routedTo = (sinks ?? []).map((k) => (k.kind === 'upstream' ? '$upstream' : `${k.moduleId}/${k.inputName}`))
    if (msg.moduleId && msg.outputName) {
      // `routedTo`: the routing decision, which `monitor --output-name … --log-level debug` prints.
      const ev: HubEvent = { deviceId: msg.deviceId, moduleId: msg.moduleId, outputName: msg.outputName, properties: msg.properties, systemProperties: msg.systemProperties, payload: body, enqueuedTime, routedTo }
      this.events.emit('output', ev)
    }
    if (!sinks) return
    this.broker.log.debug({ from: msg.moduleId ? `${msg.deviceId}/${msg.moduleId}` : msg.deviceId, output: msg.outputName, sinks: routedTo }, 'routed message')
    for (const sink of sinks) {
      if (sink.kind === 'upstream' && this.broker.bridge.enabled) {
        // A parent is set: forward as the device's own telemetry (store and forward while it is away).
        this.broker.bridge.enqueueTelemetry(formatTelemetryTopic({ deviceId: msg.deviceId, moduleId: msg.moduleId }, msg.properties, msg.systemProperties), body)
      } else if (sink.kind === 'upstream') {
        const ev: HubEvent = { deviceId: msg.deviceId, moduleId: msg.moduleId, properties: msg.properties, systemProperties: msg.systemProperties, payload: body, enqueuedTime }
        this.events.emit('event', ev)
      } else {
        const edge = this.broker.ctx.hub.edgeDeviceId
        const sys: SystemProperties = { ...msg.systemProperties }
        delete sys.outputName
        this.broker
          .publish({ topic: formatModuleInputTopic(edge, sink.moduleId, sink.inputName, msg.properties, sys), payload: body, qos: 1 })
          .catch((err: unknown) => this.broker.log.warn({ err: (err as Error).message }, 'delivery to module input failed'))
      }
    }
  }
}
