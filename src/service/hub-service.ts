/**
 * The service side of the hub (what IoT Hub does for `az iot hub …`): twins, direct methods,
 * C2D, module inputs, the event stream. Goes through the running broker's control API when
 * one runs (so devices see changes at once); twin show/update fall back to the store when
 * none runs, the live-only operations fail with BrokerUnreachableError (exit 3).
 */
import { statSync } from 'node:fs'

import { serviceTwinView, twinQuerySource } from './twin-view.js'
import { collectPages, queryAll, type QueryDocument, type QueryPage } from '../query/index.js'
import type { HubContext } from '../config/home.js'
import { BrokerUnreachableError, fromWireError, NotFoundError, UsageError } from '../errors.js'
import { isJsonObject, parseLenientJson, type JsonObject } from '../policy/index.js'
import type { TwinKey } from '../registry/types.js'
import { updateTwin, type ServiceTwinJson, type Twin } from '../twin/index.js'
import { C2D_SYSTEM_HEADERS, parsePropsFlag, type C2dReceived, type C2dSettlement, type FeedbackAck, type FeedbackRecord, type SystemProperties } from '../iothub/index.js'
import { ControlClient } from './control-client.js'
import { readDocument, setEdgeHubDesired } from './edgehub.js'

function path(key: TwinKey, suffix = ''): string {
  const base = `/twins/${encodeURIComponent(key.deviceId)}`
  return (key.moduleId ? `${base}/modules/${encodeURIComponent(key.moduleId)}` : base) + suffix
}

/**
 * az `c2d-message send`'s system property flags → SystemProperties. `expiry` is az's milliseconds
 * since the epoch (or ISO 8601) and must be in the future; `wait` needs an ack that produces feedback.
 */
export function c2dSystemProperties(f: {
  messageId?: string
  correlationId?: string
  userId?: string
  contentType?: string
  contentEncoding?: string
  expiry?: string
  wait?: boolean
  ack?: string
}): SystemProperties {
  if (f.wait && (f.ack === undefined || f.ack === 'none')) throw new UsageError('--wait needs --ack positive, negative or full (there is no feedback to wait for otherwise)')
  const sys: SystemProperties = {}
  if (f.messageId !== undefined) sys.messageId = f.messageId
  if (f.correlationId !== undefined) sys.correlationId = f.correlationId
  if (f.userId !== undefined) sys.userId = f.userId
  if (f.contentType !== undefined) sys.contentType = f.contentType
  if (f.contentEncoding !== undefined) sys.contentEncoding = f.contentEncoding
  if (f.expiry !== undefined) {
    const ms = /^\d+$/.test(f.expiry) ? Number(f.expiry) : Date.parse(f.expiry)
    if (!Number.isFinite(ms)) throw new UsageError(`--expiry "${f.expiry}" is not milliseconds since the epoch or an ISO 8601 time`)
    if (ms < Date.now()) throw new UsageError(`--expiry ${f.expiry} is in the past`)
    sys.expiryTimeUtc = new Date(ms).toISOString()
  }
  return sys
}

/**
 * `--desired '{"a":1}'`, `--desired @file.json`, or `--desired file.json` (az's process_json_arg
 * reads the value as a file whenever a file by that name exists); lenient JSON. A value that is
 * neither JSON nor an existing file but looks like a path says so (az warns the same).
 */
export function parseJsonArg(value: string, what: string): unknown {
  if (value.startsWith('@')) return parseLenientJson(readDocument(value.slice(1)), what)
  if (isFile(value)) return parseLenientJson(readDocument(value), `${what} (file ${value})`)
  try {
    return parseLenientJson(value, what)
  } catch (err) {
    if (looksLikeFile(value)) throw new NotFoundError(`${what}: file "${value}" not found (and the value is not JSON)`, 'check the path, or pass the JSON itself')
    throw err
  }
}

/**
 * A twin document (`--json` of az `device-twin replace`) → the sections a replace sets: `tags` and
 * `properties.desired`, without `$metadata`/`$version` (what `twin show` prints back).
 */
export function twinReplacement(doc: unknown): { tags?: unknown; desired?: unknown } {
  if (!isJsonObject(doc)) throw new UsageError('--json must be a twin object: {"tags": {…}, "properties": {"desired": {…}}}')
  const props = doc.properties
  if (props !== undefined && !isJsonObject(props)) throw new UsageError('--json: properties must be an object')
  const desired = isJsonObject(props) ? props.desired : undefined
  if (desired === undefined && doc.tags === undefined) throw new UsageError('--json has neither tags nor properties.desired: nothing to replace')
  const clean = (v: unknown) => {
    if (!isJsonObject(v)) return v
    const { $metadata: _m, $version: _v, ...rest } = v
    return rest
  }
  return { ...(doc.tags !== undefined ? { tags: doc.tags ?? {} } : {}), ...(desired !== undefined ? { desired: clean(desired) } : {}) }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** az's looks_like_file: a value ending in a file extension it knows. */
function looksLikeFile(value: string): boolean {
  return /\.(json|jsonc|txt|ya?ml)$/i.test(value.trim())
}

export class HubService {
  private readonly control?: ControlClient

  constructor(readonly ctx: HubContext) {
    this.control = ControlClient.tryConnect(ctx.home, ctx.hub)
  }

  private live(): ControlClient {
    if (!this.control) throw new BrokerUnreachableError(`broker not reachable: no broker is running for ${this.ctx.home}`)
    return this.control
  }

  async showTwin(key: TwinKey): Promise<ServiceTwinJson> {
    if (this.control) return this.control.call<ServiceTwinJson>('GET', path(key))
    return serviceTwinView(this.ctx, key)
  }

  /**
   * A service twin update. On this hub's `$edgeHub` module twin the desired part is validated and
   * stored as `edgemq edgehub set` does (either document shape; exit 2 when invalid).
   */
  async updateTwin(key: TwinKey, update: { desired?: unknown; tags?: unknown }, opts: { etag?: string; replace?: boolean } = {}): Promise<ServiceTwinJson> {
    if (key.deviceId === this.ctx.hub.edgeDeviceId && key.moduleId === '$edgeHub' && update.desired !== undefined) {
      const desired = update.desired
      if (!isJsonObject(desired)) throw new UsageError('--desired must be a JSON object')
      const wrapper = desired['$edgeHub']
      const inner = isJsonObject(wrapper) && isJsonObject(wrapper['properties.desired']) ? (wrapper['properties.desired'] as JsonObject) : desired
      await setEdgeHubDesired(this.ctx, inner, { replace: opts.replace })
      if (update.tags === undefined) return this.showTwin(key)
      update = { tags: update.tags }
    }
    if (this.control) {
      const body = { ...(update.desired !== undefined ? { properties: { desired: update.desired } } : {}), ...(update.tags !== undefined ? { tags: update.tags } : {}) }
      return this.control.call<ServiceTwinJson>(opts.replace ? 'PUT' : 'PATCH', path(key), body, opts.etag ? { 'if-match': opts.etag } : {})
    }
    await this.ctx.registry.identity(key.deviceId, key.moduleId)
    await this.ctx.store.updateTwin(key, (t) => updateTwin(t as Twin, update, { ifMatch: opts.etag, replace: opts.replace }) as typeof t, update.desired !== undefined ? 'desired' : 'tags')
    return this.showTwin(key)
  }

  /** az monitor-events `--device-query`: the device ids the query returns (evaluated once, as az does). */
  async deviceIdsOf(sql: string): Promise<Set<string>> {
    const rows = await this.query(sql)
    if (rows.some((r) => typeof r.deviceId !== 'string')) throw new UsageError('--device-query must return deviceId (e.g. SELECT deviceId FROM devices WHERE …)')
    return new Set(rows.map((r) => r.deviceId as string))
  }

  /**
   * An IoT Hub query (az `hub query`): through the running broker (connectionState is live), else
   * over the store. QueryParseError (exit 2) on bad SQL.
   */
  async query(sql: string, opts: { top?: number } = {}): Promise<QueryDocument[]> {
    const control = this.control
    const offline = () => queryAll(twinQuerySource(this.ctx), sql, opts)
    if (!control) return offline()
    // A read: when the broker does not answer, the store still does (connectionState then unknown: Disconnected).
    return collectPages(async (token): Promise<QueryPage> => {
      const r = await control.request('POST', '/devices/query', { query: sql }, { 'x-ms-max-item-count': '1000', ...(token ? { 'x-ms-continuation': token } : {}) })
      if (r.status !== 200) throw fromWireError(r.status, r.body)
      const next = r.headers['x-ms-continuation']
      return { items: r.body as QueryDocument[], itemType: r.headers['x-ms-item-type'] === 'Twin' ? 'Twin' : 'Raw', ...(typeof next === 'string' ? { continuationToken: next } : {}) }
    }, opts).catch((err: unknown) => {
      if (err instanceof BrokerUnreachableError) return offline()
      throw err
    })
  }

  async invokeMethod(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number): Promise<{ status: number; payload: unknown }> {
    await this.ctx.registry.identity(key.deviceId, key.moduleId)
    return this.live().call('POST', path(key, '/methods'), { methodName, payload, responseTimeoutInSeconds: timeoutSecs })
  }

  /** The device's oldest queued C2D message, locked for `lockSecs` (IoT Hub's HTTPS receive), or undefined. Needs the running broker (the queue lives there). */
  async receiveC2dLocked(deviceId: string, lockSecs = 60): Promise<C2dReceived | undefined> {
    await this.ctx.registry.getDevice(deviceId)
    return (await this.live().call<C2dReceived | undefined>('GET', `/devices/${encodeURIComponent(deviceId)}/messages/deviceBound?lockTimeout=${lockSecs}`)) || undefined
  }

  /** Completes, rejects or abandons a locked C2D message by its etag (lock token). */
  async settleC2d(deviceId: string, etag: string, how: C2dSettlement): Promise<{ deviceId: string; etag: string; settled: C2dSettlement; outcome?: string }> {
    await this.ctx.registry.getDevice(deviceId)
    const base = `/devices/${encodeURIComponent(deviceId)}/messages/deviceBound/${encodeURIComponent(etag)}`
    if (how === 'abandon') return this.live().call('POST', `${base}/abandon`)
    return this.live().call('DELETE', how === 'reject' ? `${base}?reject` : base)
  }

  /** Drops the device's queued C2D messages. The queue lives in the running broker: without one nothing is queued. */
  async purgeC2d(deviceId: string): Promise<{ deviceId: string; totalMessagesPurged: number }> {
    await this.ctx.registry.getDevice(deviceId)
    if (!this.control) return { deviceId, totalMessagesPurged: 0 }
    return this.control.call('DELETE', `/devices/${encodeURIComponent(deviceId)}/commands`)
  }

  /** `queued`: the device was not subscribed; IoT Hub's C2D queue keeps it for its next subscribe. */
  /**
   * A C2D message through the running broker. `props` is the `--props` text (`a=1;$.mid=m`); `sys`
   * (az's --mid, --cid, --uid, --ct, --ce, --expiry) overrides the system properties in it.
   */
  async sendC2d(deviceId: string, data: string | Buffer, props?: string, opts: { ack?: FeedbackAck; sys?: SystemProperties } = {}): Promise<{ messageId: string; queued: boolean }> {
    await this.ctx.registry.getDevice(deviceId)
    const headers: Record<string, string> = {}
    if (opts.ack) headers['iothub-ack'] = opts.ack
    const bag = props ? parsePropsFlag(props) : { properties: {}, systemProperties: {} }
    for (const [k, v] of Object.entries(bag.properties)) headers[`iothub-app-${k}`] = v
    const sys: SystemProperties = { ...bag.systemProperties, ...opts.sys }
    for (const [field, header] of C2D_SYSTEM_HEADERS) if (sys[field]) headers[header] = sys[field]
    return this.live().call('POST', `/devices/${encodeURIComponent(deviceId)}/messages/deviceBound`, Buffer.isBuffer(data) ? data : Buffer.from(data), headers)
  }

  async sendModuleInput(deviceId: string, moduleId: string, input: string, data: string | Buffer, props?: string): Promise<void> {
    await this.ctx.registry.getModule(deviceId, moduleId)
    const headers: Record<string, string> = {}
    if (props) for (const [k, v] of Object.entries(parsePropsFlag(props).properties)) headers[`iothub-app-${k}`] = v
    await this.live().call('POST', `/edgemq/modules/${encodeURIComponent(deviceId)}/${encodeURIComponent(moduleId)}/inputs/${encodeURIComponent(input)}`, Buffer.isBuffer(data) ? data : Buffer.from(data), headers)
  }

  /** Reads (and so removes) C2D delivery feedback records, optionally one device's, until `signal` aborts. */
  streamFeedback(onRecord: (r: FeedbackRecord) => void, signal: AbortSignal, deviceId?: string): Promise<void> {
    const q = deviceId === undefined ? '' : `?deviceId=${encodeURIComponent(deviceId)}`
    return this.live().stream(`/edgemq/feedback${q}`, (line) => onRecord(JSON.parse(line) as FeedbackRecord), signal)
  }

  /** Streams events (telemetry on `$upstream`, or module outputs) until `signal` aborts. */
  streamEvents(kind: 'event' | 'output', onEvent: (ev: WireEvent) => void, signal: AbortSignal): Promise<void> {
    return this.live().stream(`/edgemq/events?kind=${kind}`, (line) => onEvent(JSON.parse(line) as WireEvent), signal)
  }
}

/** An event as the control API streams it (payload base64). */
export interface WireEvent {
  deviceId: string
  moduleId?: string
  outputName?: string
  /** Module outputs: where the routes sent it. */
  routedTo?: string[]
  properties: Record<string, string>
  systemProperties: Record<string, string>
  payload: string
  enqueuedTime: string
  /** The model id the sender announced at CONNECT (az's `interface`, IoT Hub's `dt-dataschema`). */
  modelId?: string
}

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
}

/**
 * `monitor`'s filter: a device id glob (`*`, `?`), the devices of az's `--device-query`, an exact module
 * id, output name and interface (az `-i`: the model id).
 */
export function eventFilter(opts: { device?: string; devices?: ReadonlySet<string>; module?: string; outputName?: string; interface?: string }): (ev: WireEvent) => boolean {
  const deviceRe = opts.device ? globToRegExp(opts.device) : undefined
  return (ev) =>
    (!deviceRe || deviceRe.test(ev.deviceId)) &&
    (opts.devices === undefined || opts.devices.has(ev.deviceId)) &&
    (opts.module === undefined || ev.moduleId === opts.module) &&
    (opts.outputName === undefined || ev.outputName === opts.outputName) &&
    (opts.interface === undefined || ev.modelId === opts.interface)
}

/** az monitor-events `--props`: sys, app, anno, all (case-insensitive). */
export type MonitorPropKind = 'sys' | 'app' | 'anno' | 'all'

export function parseMonitorProps(values: string[]): Set<MonitorPropKind> {
  const out = new Set<MonitorPropKind>()
  for (const v of values.flatMap((x) => x.split(/[\s,]+/)).filter(Boolean)) {
    const k = v.toLowerCase()
    if (k !== 'sys' && k !== 'app' && k !== 'anno' && k !== 'all') throw new UsageError(`--props "${v}" is not one of sys, app, anno, all`)
    out.add(k)
  }
  return out
}

/** az's AMQP system property names for the MQTT ones edgemq carries. */
const AZ_SYSTEM_NAMES: Record<string, string> = {
  messageId: 'message_id',
  correlationId: 'correlation_id',
  userId: 'user_id',
  to: 'to',
  contentType: 'content_type',
  contentEncoding: 'content_encoding',
  expiryTimeUtc: 'absolute_expiry_time',
}

/**
 * az monitor-events' JSON shape for one event (azext_iot/monitor/parsers/common_parser.py): `properties`
 * with `system`/`application` and `annotations` as `--props` asks. The payload is parsed as JSON when the
 * content type (`--ct`, else the message's) is application/json, as az does, or — with neither — when it
 * parses (edgemq's leniency for devices that send JSON without a content type).
 */
export function monitorView(ev: WireEvent, opts: { props?: Set<MonitorPropKind>; contentType?: string } = {}) {
  const raw = Buffer.from(ev.payload, 'base64')
  const text = raw.toString('utf8')
  const contentType = (opts.contentType ?? ev.systemProperties.contentType ?? '').toLowerCase()
  let payload: unknown = text
  if (contentType === '' || contentType.includes('application/json')) {
    try {
      payload = JSON.parse(text)
    } catch {
      /* not JSON: keep the text, like az */
    }
  }
  const props = opts.props ?? new Set<MonitorPropKind>()
  const all = props.has('all')
  const enqueuedMs = Date.parse(ev.enqueuedTime)
  const annotations = {
    'iothub-connection-device-id': ev.deviceId,
    ...(ev.moduleId ? { 'iothub-connection-module-id': ev.moduleId } : {}),
    'iothub-enqueuedtime': enqueuedMs,
    'iothub-message-source': 'Telemetry',
    'x-opt-enqueued-time': enqueuedMs,
    ...(ev.modelId ? { 'dt-dataschema': ev.modelId } : {}),
  }
  const system: Record<string, string> = {}
  for (const [k, v] of Object.entries(ev.systemProperties)) if (v !== undefined && k !== 'outputName') system[AZ_SYSTEM_NAMES[k] ?? k] = v
  system['iothub-enqueuedtime'] = ev.enqueuedTime
  return {
    event: {
      origin: ev.deviceId,
      module: ev.moduleId ?? '',
      interface: ev.modelId ?? '',
      component: '',
      ...(props.size > 0
        ? {
            properties: {
              ...(all || props.has('sys') ? { system } : {}),
              ...(all || props.has('app') ? { application: ev.properties } : {}),
            },
          }
        : {}),
      ...(all || props.has('anno') ? { annotations } : {}),
      ...(ev.outputName ? { output: ev.outputName } : {}),
      payload,
    },
  }
}
