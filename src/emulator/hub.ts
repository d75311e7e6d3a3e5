/**
 * `startHub()`: a whole IoT Hub + edge broker in this process, for integration tests.
 *
 * In memory by default: registry and twins in an in-memory SQLite, MQTT sessions in aedes' memory
 * persistence, the CA and server certificate generated in memory, no broker.json — nothing is written
 * to disk. Every hub owns its store, aedes instance, message bus, PKI and servers, so several hubs in
 * one process (parallel test files) never see each other. Ports are free ones unless given.
 */
import { serviceTwinView, twinQuerySource } from '../service/twin-view.js'
import { queryAll, runQuery, type QueryDocument, type QueryOptions, type QueryPage } from '../query/index.js'
import { on } from 'node:events'

import type { Logger } from 'pino'

import { EdgeBroker, startEdgeBroker } from '../broker/broker.js'
import type { HubEvent, MethodResult } from '../broker/iothub.js'
import type { LogLevel } from '../broker/logger.js'
import { openHub, resolveHome, type HubContext } from '../config/home.js'
import { InvalidDocumentError, UsageError } from '../errors.js'
import type { Authorizations, JsonObject } from '../policy/index.js'
import type { CreateDeviceInput, CreateModuleInput } from '../registry/registry.js'
import type { BrokerSettings, DeviceRecord, ModuleRecord, TwinKey } from '../registry/types.js'
import { parseEdgeHubDocument } from '../edgehub/index.js'
import { eventHubConnectionString } from '../eventhubs/connection-string.js'
import { setEdgeHubDesired, type SetEdgeHubResult } from '../service/edgehub.js'
import type { ServiceTwinJson } from '../twin/index.js'
import type { Dps } from '../dps/service.js'

/**
 * `'allow-all'`: every registered identity may connect, publish and subscribe to any non-`$` topic
 * (IoT Hub topics are always allowed for the client's own identity). `'none'`: leave `$edgeHub` as it
 * is (a fresh hub then refuses every connection, as IoT Edge does). Or the `authorizations` array.
 */
export type HubPolicy = 'allow-all' | 'none' | Authorizations

export interface StartHubOptions {
  /** Default true: nothing on disk. false: the hub in `home` (files as `edgemq broker start` keeps them). */
  inMemory?: boolean
  /** The state directory when `inMemory` is false (default $EDGEMQ_HOME or ~/.edgemq). */
  home?: string
  /** 0 (the default for mqtt, mqtts, rest) = a free port; null = no such listener. ws, amqps and amqp are off unless given (amqps: IoT Hub's 5671). */
  ports?: { mqtt?: number | null; mqtts?: number | null; rest?: number | null; ws?: number | null; amqps?: number | null; amqp?: number | null }
  /** Listen address (default 127.0.0.1). */
  host?: string
  /** Hub name (default `edgemq`): the SAS host name is `<name>.azure-devices.net`. */
  hubName?: string
  edgeDeviceId?: string
  /** Default 'allow-all' when the hub has no authorization policy yet; else the stored one stays. */
  policy?: HubPolicy
  /** Broker log level (default 'silent'). */
  logLevel?: LogLevel
  /** A pino logger for the broker (overrides logLevel), e.g. to assert on what it logs. */
  logger?: Logger
  /** aedes' heartbeat in ms (default 60 s); orphaned wills of a crashed broker go out after ~4×. */
  heartbeatIntervalMs?: number
  /** SAS clock skew tolerance in seconds (default 300, as `broker start --clock-skew`). */
  clockSkewSecs?: number
  /** Overrides of the hub's broker settings (limits) for this run. */
  settings?: Partial<BrokerSettings>
  /** The host DPS registrations are assigned to (default localhost). */
  dpsAssignedHub?: string
}

export type DeviceTarget = string | TwinKey

export type CreateDeviceOptions = Omit<CreateDeviceInput, 'deviceId'>
export type CreateModuleOptions = Omit<CreateModuleInput, 'deviceId' | 'moduleId'>

export interface ConnectionStringOptions {
  module?: string
  /** GatewayHostName; default 'localhost' (where the broker is). false = none. */
  gateway?: string | false
  keyType?: 'primary' | 'secondary'
}

export interface TwinUpdate {
  desired?: Record<string, unknown>
  tags?: Record<string, unknown>
}

export interface Hub {
  readonly name: string
  /** `<name>.azure-devices.net`: what SAS tokens and MQTT usernames carry. */
  readonly hostName: string
  readonly edgeDeviceId: string
  /** rest also serves MQTT over WebSockets (wss://…/$iothub/websocket); ws is the plain ws:// listener (off by default). */
  readonly ports: { mqtt?: number; mqtts?: number; rest?: number; ws?: number; amqps?: number; amqp?: number; control: number }
  /** The hub CA (PEM): trust it for MQTTS (device SDK `setOptions({ ca })`) and the REST port. */
  readonly caPem: string
  /** The CA file, for an on-disk hub only (in memory nothing is written). */
  readonly caFile?: string
  /** The hub's Device Provisioning Service: enrollments, groups, registrations, `idScope`, `connectionString()`. */
  readonly dps: Dps
  /** The underlying registry and broker, for anything the helpers below do not cover. */
  readonly context: HubContext
  readonly broker: EdgeBroker
  createDevice(deviceId: string, opts?: CreateDeviceOptions): Promise<DeviceRecord>
  createModule(deviceId: string, moduleId: string, opts?: CreateModuleOptions): Promise<ModuleRecord>
  /** `HostName=<hub>.azure-devices.net;DeviceId=…[;ModuleId=…];SharedAccessKey=…;GatewayHostName=localhost`. */
  deviceConnectionString(deviceId: string, opts?: ConnectionStringOptions): Promise<string>
  /** `HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=…` (for azure-iothub against the REST port). */
  serviceConnectionString(opts?: { policy?: string; hostName?: string }): string
  /**
   * The built-in Event Hubs-compatible endpoint's connection string for `@azure/event-hubs`:
   * `Endpoint=sb://localhost:<port>/;…;EntityPath=<hub>`, plain AMQP with `UseDevelopmentEmulator=true`
   * when the hub has an `amqp` port, else TLS on `amqps` (trust `caPem`). Policy default iothubowner.
   */
  eventHubConnectionString(opts?: { policy?: string; tls?: boolean }): string
  /** A device (or module) SAS token, signed with its primary key. */
  sas(deviceId: string, moduleId?: string, opts?: { durationSecs?: number }): Promise<string>
  /** Telemetry reaching the hub (what `edgemq monitor` shows), from the moment of the call; ends on close(). */
  events(filter?: { deviceId?: string; moduleId?: string }): AsyncIterableIterator<HubEvent>
  /** A direct method (404-style NotFoundError when not connected, TimeoutError after `timeoutSecs`). */
  invokeMethod(target: DeviceTarget, methodName: string, payload?: unknown, timeoutSecs?: number): Promise<MethodResult>
  /** Service twin update: desired reaches a connected device at once. `etag` = If-Match. */
  updateTwin(target: DeviceTarget, patch: TwinUpdate, opts?: { etag?: string }): Promise<ServiceTwinJson>
  getTwin(target: DeviceTarget): Promise<ServiceTwinJson>
  /**
   * An IoT Hub query over device or module twins (`SELECT * FROM devices WHERE tags.site = 'a'`):
   * every result, at most `top`. QueryParseError (with the position) on bad SQL.
   */
  query(sql: string, opts?: { top?: number }): Promise<QueryDocument[]>
  /** One page of a query, as POST /devices/query answers it (pageSize, continuationToken). */
  queryPage(sql: string, opts?: QueryOptions): Promise<QueryPage>
  /**
   * C2D message to a device (QoS 1). A device that is not subscribed (and has no persistent session
   * keeping its subscription) gets it from its C2D queue (max 50, TTL 1 h or `$.exp`) on its next
   * subscribe to `devices/<id>/messages/devicebound/#`. Returns the message id.
   */
  sendC2d(deviceId: string, data: string | Buffer, properties?: Record<string, string>): Promise<string>
  /** Set (merge, or `replace`) the `$edgeHub` desired document — either shape; applied before this resolves. */
  setEdgeHub(doc: JsonObject | string, opts?: { replace?: boolean }): Promise<SetEdgeHubResult>
  close(): Promise<void>
}

/** The `allow-all` statements: connect, and publish/subscribe on every non-`$` topic. */
export const ALLOW_ALL_AUTHORIZATIONS: Authorizations = [
  { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] },
]

function twinKey(target: DeviceTarget): TwinKey {
  if (typeof target !== 'string') return target.moduleId ? { deviceId: target.deviceId, moduleId: target.moduleId } : { deviceId: target.deviceId }
  const slash = target.indexOf('/')
  return slash < 0 ? { deviceId: target } : { deviceId: target.slice(0, slash), moduleId: target.slice(slash + 1) }
}

function policyPatch(policy: HubPolicy): JsonObject | undefined {
  if (policy === 'none') return undefined
  const authorizations = policy === 'allow-all' ? ALLOW_ALL_AUTHORIZATIONS : policy
  if (!Array.isArray(authorizations)) throw new UsageError('policy must be "allow-all", "none" or an authorizations array')
  // Replace the array as a whole (a merge patch replaces arrays anyway).
  return { schemaVersion: '1.2', mqttBroker: { authorizations: structuredClone(authorizations) as unknown as JsonObject[] } } as JsonObject
}

export async function startHub(opts: StartHubOptions = {}): Promise<Hub> {
  const inMemory = opts.inMemory ?? true
  const home = inMemory ? (opts.home ?? '(in-memory)') : resolveHome(opts.home)
  const ctx = await openHub({ home, inMemory, createDefault: true, hub: { name: opts.hubName, edgeDeviceId: opts.edgeDeviceId } })
  let broker: EdgeBroker | undefined
  try {
    if (opts.hubName && ctx.hub.name !== opts.hubName) {
      throw new UsageError(`${home} already holds hub "${ctx.hub.name}", not "${opts.hubName}"`, 'omit hubName, or use another home')
    }
    const edgeHubTwin = await ctx.store.getTwin({ deviceId: ctx.hub.edgeDeviceId, moduleId: '$edgeHub' })
    const hasPolicy = (edgeHubTwin?.desired as { mqttBroker?: { authorizations?: unknown } } | undefined)?.mqttBroker?.authorizations !== undefined
    const patch = policyPatch(opts.policy ?? (hasPolicy ? 'none' : 'allow-all'))
    if (patch) await setEdgeHubDesired(ctx, patch)

    const ports = opts.ports ?? {}
    broker = await startEdgeBroker({
      home,
      inMemory,
      context: ctx,
      host: opts.host,
      port: ports.mqtt === undefined ? 0 : ports.mqtt,
      tlsPort: ports.mqtts === undefined ? 0 : ports.mqtts,
      restPort: ports.rest === undefined ? 0 : ports.rest,
      wsPort: ports.ws ?? null,
      amqpsPort: ports.amqps ?? null,
      amqpPort: ports.amqp ?? null,
      logLevel: opts.logLevel ?? 'silent',
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.heartbeatIntervalMs ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
      ...(opts.clockSkewSecs !== undefined ? { clockSkewSecs: opts.clockSkewSecs } : {}),
      ...(opts.settings ? { settings: opts.settings } : {}),
      ...(opts.dpsAssignedHub ? { dpsAssignedHub: opts.dpsAssignedHub } : {}),
      writeRuntimeFile: !inMemory,
    })
  } catch (err) {
    await ctx.close()
    throw err
  }
  return new RunningHub(ctx, broker, inMemory)
}

class RunningHub implements Hub {
  private readonly aborts = new Set<AbortController>()
  private closing?: Promise<void>

  constructor(
    readonly context: HubContext,
    readonly broker: EdgeBroker,
    private readonly inMemory: boolean,
  ) {}

  get name(): string {
    return this.context.hub.name
  }
  get hostName(): string {
    return this.context.hub.hostName
  }
  get edgeDeviceId(): string {
    return this.context.hub.edgeDeviceId
  }
  get ports() {
    return { ...this.broker.ports }
  }
  get caPem(): string {
    return this.broker.pki?.caPem ?? ''
  }
  get dps(): Dps {
    return this.broker.dps.service()
  }
  get caFile(): string | undefined {
    return this.inMemory ? undefined : this.broker.pki?.caCertPath || undefined
  }

  createDevice(deviceId: string, opts: CreateDeviceOptions = {}): Promise<DeviceRecord> {
    return this.context.registry.createDevice({ ...opts, deviceId })
  }

  createModule(deviceId: string, moduleId: string, opts: CreateModuleOptions = {}): Promise<ModuleRecord> {
    return this.context.registry.createModule({ ...opts, deviceId, moduleId })
  }

  deviceConnectionString(deviceId: string, opts: ConnectionStringOptions = {}): Promise<string> {
    const gateway = opts.gateway === false ? undefined : (opts.gateway ?? 'localhost')
    return this.context.registry.connectionString(deviceId, opts.module, { gateway, keyType: opts.keyType })
  }

  serviceConnectionString(opts: { policy?: string; hostName?: string } = {}): string {
    return this.context.registry.serviceConnectionString({ policy: opts.policy, gateway: opts.hostName ?? 'localhost' })
  }

  eventHubConnectionString(opts: { policy?: string; tls?: boolean } = {}): string {
    const { amqp, amqps } = this.broker.ports
    const tls = opts.tls ?? amqp === undefined
    const port = tls ? amqps : amqp
    if (port === undefined) throw new UsageError(`this hub serves no ${tls ? 'amqps' : 'amqp'} port`, 'start it with ports: { amqp: 0 } (or amqps)')
    return eventHubConnectionString(this.context.registry, this.name, { policy: opts.policy, emulator: !tls, port })
  }

  sas(deviceId: string, moduleId?: string, opts: { durationSecs?: number } = {}): Promise<string> {
    return this.context.registry.sasToken(deviceId, moduleId, { durationSecs: opts.durationSecs })
  }

  events(filter: { deviceId?: string; moduleId?: string } = {}): AsyncIterableIterator<HubEvent> {
    const ac = new AbortController()
    this.aborts.add(ac)
    // Subscribes now (not at the first next()), so nothing sent right after this call is missed.
    const source = on(this.broker.iothub.events, 'event', { signal: ac.signal }) as AsyncIterableIterator<[HubEvent]>
    const stop = () => {
      ac.abort()
      this.aborts.delete(ac)
    }
    const done: IteratorReturnResult<undefined> = { done: true, value: undefined }
    const iterator: AsyncIterableIterator<HubEvent> = {
      async next(): Promise<IteratorResult<HubEvent>> {
        for (;;) {
          let r: IteratorResult<[HubEvent]>
          try {
            r = await source.next()
          } catch (err) {
            if ((err as Error).name === 'AbortError') return done
            throw err
          }
          if (r.done) return done
          const ev = r.value[0]
          if (filter.deviceId !== undefined && ev.deviceId !== filter.deviceId) continue
          if (filter.moduleId !== undefined && ev.moduleId !== filter.moduleId) continue
          return { done: false, value: ev }
        }
      },
      async return(): Promise<IteratorResult<HubEvent>> {
        stop()
        return done
      },
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    return iterator
  }

  async invokeMethod(target: DeviceTarget, methodName: string, payload?: unknown, timeoutSecs = 30): Promise<MethodResult> {
    const key = twinKey(target)
    await this.context.registry.identity(key.deviceId, key.moduleId)
    return this.broker.iothub.invokeMethod(key, methodName, payload, timeoutSecs)
  }

  async updateTwin(target: DeviceTarget, patch: TwinUpdate, opts: { etag?: string } = {}): Promise<ServiceTwinJson> {
    const key = twinKey(target)
    await this.context.registry.identity(key.deviceId, key.moduleId)
    await this.broker.iothub.updateTwin(key, { desired: patch.desired, tags: patch.tags }, { ifMatch: opts.etag })
    return this.getTwin(key)
  }

  async getTwin(target: DeviceTarget): Promise<ServiceTwinJson> {
    const key = twinKey(target)
    return serviceTwinView(this.context, key, this.broker.iothub)
  }


  query(sql: string, opts: { top?: number } = {}): Promise<QueryDocument[]> {
    return queryAll(this.querySource(), sql, opts)
  }

  queryPage(sql: string, opts: QueryOptions = {}): Promise<QueryPage> {
    return runQuery(this.querySource(), sql, opts)
  }

  private querySource() {
    return twinQuerySource(this.context, this.broker.iothub)
  }

  sendC2d(deviceId: string, data: string | Buffer, properties: Record<string, string> = {}): Promise<string> {
    return this.broker.iothub.sendC2d(deviceId, Buffer.isBuffer(data) ? data : Buffer.from(data), properties).then((r) => r.messageId)
  }

  async setEdgeHub(doc: JsonObject | string, opts: { replace?: boolean } = {}): Promise<SetEdgeHubResult> {
    const desired = parseEdgeHubDocument(typeof doc === 'string' ? doc : JSON.stringify(doc))
    const result = await setEdgeHubDesired(this.context, desired, opts)
    // Apply now rather than at the next change-feed poll, so the caller can connect right after.
    await this.broker.live.reloadEdgeHub('change')
    if (this.broker.lastDesiredStatus.code !== 200) throw new InvalidDocumentError(`$edgeHub document rejected: ${this.broker.lastDesiredStatus.description}`)
    return result
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const ac of this.aborts) ac.abort()
      this.aborts.clear()
      await this.broker.close()
      await this.context.close()
    })()
    return this.closing
  }
}
