/**
 * IoT Hub MQTT topics: classify what a client published, and format what the hub sends back
 * (PROTOCOL.md §4). Pure functions, no I/O.
 *
 * Forms accepted (IoT Hub's, plus the seed's where they differ — PROTOCOL.md: "accept both"):
 *   telemetry   devices/<d>/messages/events[/<bag>]            (with or without the trailing slash)
 *               devices/<d>/modules/<m>/messages/events[/<bag>]
 *               devices/<d>/<m>/messages/events[/<bag>]          (seed's module form)
 *   c2d         devices/<d>/messages/devicebound[/<bag>]        (hub → device)
 *   input       devices/<d>/modules/<m>/inputs/<input>[/<bag>]   (edgeHub → module)
 *   twin        $iothub/twin/GET/?$rid=<r>   (seed: ?rid=<r>, and ?rid=<r>/# with trailing junk)
 *               $iothub/twin/PATCH/properties/reported/?$rid=<r>[&…]
 *               $iothub/twin/res/<status>/?$rid=<r>[&$version=<n>]  (hub → device)
 *               $iothub/twin/PATCH/properties/desired/?$version=<n>  (hub → device)
 *   methods     $iothub/methods/POST/<name>/?$rid=<r>               (hub → device)
 *               $iothub/methods/res/<status>/?$rid=<r>  (seed: $iothub/methods/res/<status>/<r>)
 * Anything else not starting with `devices/` or `$` is a user topic.
 */
import { encodePropertyBag, parsePropertyBag, safeDecode, type SystemProperties } from './propertyBag.js'

/** Which query key carried the request id: answer with the same one (seed uses `rid`). */
export type RidKey = '$rid' | 'rid'

export interface Identity {
  deviceId: string
  moduleId?: string
}

export interface TelemetryTopic {
  kind: 'telemetry'
  deviceId: string
  moduleId?: string
  /** Which spelling the client used: `modules` = devices/<d>/modules/<m>/…, `seed` = devices/<d>/<m>/…. */
  form: 'device' | 'modules' | 'seed'
  properties: Record<string, string>
  systemProperties: SystemProperties
}

export interface C2dTopic {
  kind: 'c2d'
  deviceId: string
  properties: Record<string, string>
  systemProperties: SystemProperties
}

export interface ModuleInputTopic {
  kind: 'module-input'
  deviceId: string
  moduleId: string
  inputName: string
  properties: Record<string, string>
  systemProperties: SystemProperties
}

export interface TwinGetTopic {
  kind: 'twin-get'
  /** The request id exactly as written (not decoded), to echo back unchanged. */
  rid: string
  ridKey: RidKey
}

export interface TwinPatchReportedTopic {
  kind: 'twin-patch-reported'
  rid: string
  ridKey: RidKey
  /** Other query parameters (decoded), e.g. `$version`. */
  params: Record<string, string>
}

export interface TwinResponseTopic {
  kind: 'twin-response'
  status: number
  rid: string
  ridKey: RidKey
  version?: number
}

export interface TwinDesiredTopic {
  kind: 'twin-desired'
  version?: number
}

export interface MethodRequestTopic {
  kind: 'method-request'
  methodName: string
  rid: string
}

export interface MethodResponseTopic {
  kind: 'method-response'
  status: number
  rid: string
  /** `path` = the seed's `$iothub/methods/res/<status>/<rid>`. */
  ridKey: RidKey | 'path'
}

/** A `devices/…` or `$iothub/…` topic that is not a valid IoT Hub topic. */
export interface InvalidIotHubTopic {
  kind: 'invalid'
  reason: string
  /** The identity the topic names, when it names one (`devices/<d>/…`). */
  owner?: Identity
}

/** Any other topic: an ordinary MQTT topic the broker routes by subscriptions alone. */
export interface UserTopic {
  kind: 'user'
}

export type ParsedTopic =
  | TelemetryTopic
  | C2dTopic
  | ModuleInputTopic
  | TwinGetTopic
  | TwinPatchReportedTopic
  | TwinResponseTopic
  | TwinDesiredTopic
  | MethodRequestTopic
  | MethodResponseTopic
  | InvalidIotHubTopic
  | UserTopic

export type TopicKind = ParsedTopic['kind']

/** True for topics in the IoT Hub namespaces (`devices/…`, `$iothub/…`). */
export function isIotHubTopic(topic: string): boolean {
  return topic.startsWith('devices/') || topic.startsWith('$iothub/')
}

/** Classify a published topic. Never throws. */
export function parseIotHubTopic(topic: string): ParsedTopic {
  if (topic.startsWith('$iothub/')) return parseIotHubDollar(topic)
  if (topic.startsWith('devices/')) return parseDevicesTopic(topic)
  // Other `$` topics (`$SYS/…`, `$edgehub/…`) are not IoT Hub topics; the broker's policy
  // forbids publishing to them (PROTOCOL.md §3), which is not this module's call.
  return { kind: 'user' }
}

// ---------------------------------------------------------------------------------------------
// devices/…

function bagOf(parts: string[], from: number): { properties: Record<string, string>; systemProperties: SystemProperties } {
  // Everything after the fixed segments is the bag. Normally one segment; joining the rest keeps
  // an unencoded `/` in a value (e.g. `$.to=/devices/x`) instead of losing it.
  // The SDKs end the bag with a `/` (azure-iot-device-mqtt: `…/events/$.on=out&k=v/`): not part of the last value.
  const rest = parts.slice(from)
  if (rest.length > 1 && rest[rest.length - 1] === '') rest.pop()
  return parsePropertyBag(rest.join('/'))
}

function parseDevicesTopic(topic: string): ParsedTopic {
  const parts = topic.split('/')
  const deviceId = parts[1] ?? ''
  if (deviceId === '') return { kind: 'invalid', reason: 'missing device id after "devices/"' }
  const owner = ownerOf(topic) ?? undefined

  // devices/<d>/messages/events[/<bag>]
  if (parts[2] === 'messages' && parts[3] === 'events') {
    return { kind: 'telemetry', deviceId, form: 'device', ...bagOf(parts, 4) }
  }
  // devices/<d>/messages/devicebound[/<bag>]
  if (parts[2] === 'messages' && parts[3] === 'devicebound') {
    return { kind: 'c2d', deviceId, ...bagOf(parts, 4) }
  }
  if (parts[2] === 'modules' && (parts[3] ?? '') !== '') {
    const moduleId = parts[3] as string
    // devices/<d>/modules/<m>/messages/events[/<bag>]
    if (parts[4] === 'messages' && parts[5] === 'events') {
      return { kind: 'telemetry', deviceId, moduleId, form: 'modules', ...bagOf(parts, 6) }
    }
    // devices/<d>/modules/<m>/inputs/<input>[/<bag>]
    if (parts[4] === 'inputs' && (parts[5] ?? '') !== '') {
      return { kind: 'module-input', deviceId, moduleId, inputName: parts[5] as string, ...bagOf(parts, 6) }
    }
  }
  // Seed: devices/<d>/<m>/messages/events[/<bag>]
  if (parts.length >= 5 && parts[2] !== '' && parts[3] === 'messages' && parts[4] === 'events') {
    return { kind: 'telemetry', deviceId, moduleId: parts[2] as string, form: 'seed', ...bagOf(parts, 5) }
  }
  return { kind: 'invalid', reason: `not an IoT Hub device topic: ${topic}`, owner }
}

/**
 * The identity a `devices/…` topic (or subscription filter) belongs to, or null when it names
 * none or a wildcard stands where the identity is decided. `$iothub/…` topics name no identity:
 * they belong to whichever client uses them (PROTOCOL.md §4, "one client never sees another's").
 */
export function ownerOf(topicOrFilter: string): Identity | null {
  const parts = topicOrFilter.split('/')
  if (parts[0] !== 'devices') return null
  if (!parts.some(isWildcard)) {
    // A concrete topic: take the identity the parser sees, so policy and handlers agree.
    const parsed = parseDevicesTopicShape(parts)
    if (parsed !== null) return parsed
  }
  const deviceId = parts[1]
  if (deviceId === undefined || deviceId === '' || isWildcard(deviceId)) return null
  const seg2 = parts[2]
  if (seg2 === undefined || seg2 === 'messages') return { deviceId }
  if (isWildcard(seg2)) return null
  if (seg2 === 'modules') {
    const moduleId = parts[3]
    if (moduleId === undefined || moduleId === '') return { deviceId }
    if (isWildcard(moduleId)) return null
    return { deviceId, moduleId }
  }
  // Seed form devices/<d>/<m>/messages/events: seg2 is a module id when `messages` follows.
  const seg3 = parts[3]
  if (seg3 === 'messages') return { deviceId, moduleId: seg2 }
  if (seg3 !== undefined && isWildcard(seg3)) return null
  return { deviceId }
}

/** The identity of a recognised devices/… topic (telemetry, c2d, module input), else null. */
function parseDevicesTopicShape(parts: string[]): Identity | null {
  const deviceId = parts[1] ?? ''
  if (deviceId === '') return null
  if (parts[2] === 'messages' && (parts[3] === 'events' || parts[3] === 'devicebound')) return { deviceId }
  if (parts[2] === 'modules' && (parts[3] ?? '') !== '') {
    if ((parts[4] === 'messages' && parts[5] === 'events') || (parts[4] === 'inputs' && (parts[5] ?? '') !== '')) {
      return { deviceId, moduleId: parts[3] as string }
    }
  }
  if (parts.length >= 5 && parts[2] !== '' && parts[3] === 'messages' && parts[4] === 'events') {
    return { deviceId, moduleId: parts[2] as string }
  }
  return null
}

function isWildcard(segment: string): boolean {
  return segment === '+' || segment === '#'
}

// ---------------------------------------------------------------------------------------------
// $iothub/…

interface SplitQuery {
  /** Path segments before `?`, without empty trailing segments. */
  path: string[]
  /** Raw (undecoded) query pairs, in order. */
  pairs: Array<[string, string]>
  hasQuery: boolean
}

function splitQuery(topic: string): SplitQuery {
  const q = topic.indexOf('?')
  const pathPart = q < 0 ? topic : topic.slice(0, q)
  let query = q < 0 ? '' : topic.slice(q + 1)
  // The seed publishes `$iothub/twin/GET/?rid=<r>/#`: the query ends at the first `/`.
  const slash = query.indexOf('/')
  if (slash >= 0) query = query.slice(0, slash)
  const path = pathPart.split('/')
  while (path.length > 0 && path[path.length - 1] === '') path.pop()
  const pairs: Array<[string, string]> = []
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    pairs.push(eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)])
  }
  return { path, pairs, hasQuery: q >= 0 }
}

/** The request id and the key that carried it; `$rid` wins when both are present. */
function findRid(pairs: Array<[string, string]>): { rid: string; ridKey: RidKey } | null {
  let plain: string | undefined
  for (const [k, v] of pairs) {
    const key = safeDecode(k)
    if (key === '$rid') return { rid: v, ridKey: '$rid' }
    if (key === 'rid' && plain === undefined) plain = v
  }
  return plain === undefined ? null : { rid: plain, ridKey: 'rid' }
}

function otherParams(pairs: Array<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of pairs) {
    const key = safeDecode(k)
    if (key === '$rid' || key === 'rid') continue
    out[key] = safeDecode(v)
  }
  return out
}

function parseStatus(s: string | undefined): number | null {
  if (s === undefined || !/^[0-9]{3}$/.test(s)) return null
  return Number(s)
}

function parseVersion(pairs: Array<[string, string]>): number | undefined {
  for (const [k, v] of pairs) {
    if (safeDecode(k) === '$version' && /^[0-9]+$/.test(v)) return Number(v)
  }
  return undefined
}

function parseIotHubDollar(topic: string): ParsedTopic {
  const { path, pairs } = splitQuery(topic)
  const [, area, verb] = path
  if (area === 'twin') {
    if (verb === 'GET' && path.length === 3) {
      const r = findRid(pairs)
      if (r === null) return { kind: 'invalid', reason: 'twin GET without $rid' }
      return { kind: 'twin-get', ...r }
    }
    if (verb === 'PATCH' && path[3] === 'properties' && path.length === 5) {
      if (path[4] === 'reported') {
        const r = findRid(pairs)
        if (r === null) return { kind: 'invalid', reason: 'twin reported PATCH without $rid' }
        return { kind: 'twin-patch-reported', ...r, params: otherParams(pairs) }
      }
      if (path[4] === 'desired') {
        const version = parseVersion(pairs)
        return version === undefined ? { kind: 'twin-desired' } : { kind: 'twin-desired', version }
      }
    }
    if (verb === 'res' && path.length === 4) {
      const status = parseStatus(path[3])
      const r = findRid(pairs)
      if (status === null || r === null) return { kind: 'invalid', reason: `malformed twin response topic: ${topic}` }
      const version = parseVersion(pairs)
      return version === undefined ? { kind: 'twin-response', status, ...r } : { kind: 'twin-response', status, ...r, version }
    }
    return { kind: 'invalid', reason: `unknown twin topic: ${topic}` }
  }
  if (area === 'methods') {
    if (verb === 'POST' && path.length === 4 && path[3] !== '') {
      const r = findRid(pairs)
      if (r === null) return { kind: 'invalid', reason: 'method request without $rid' }
      return { kind: 'method-request', methodName: safeDecode(path[3] as string), rid: r.rid }
    }
    if (verb === 'res') {
      const status = parseStatus(path[3])
      if (status === null) return { kind: 'invalid', reason: `method response without a 3-digit status: ${topic}` }
      const r = findRid(pairs)
      if (r !== null && path.length === 4) return { kind: 'method-response', status, ...r }
      // Seed: $iothub/methods/res/200/<rid>
      if (r === null && path.length === 5 && path[4] !== '') {
        return { kind: 'method-response', status, rid: path[4] as string, ridKey: 'path' }
      }
      return { kind: 'invalid', reason: `method response without a request id: ${topic}` }
    }
    return { kind: 'invalid', reason: `unknown methods topic: ${topic}` }
  }
  return { kind: 'invalid', reason: `unknown $iothub topic: ${topic}` }
}

// ---------------------------------------------------------------------------------------------
// Subscription filters the hub serves

export type IotHubSubscriptionKind = 'twin-response' | 'twin-desired' | 'method-request' | 'c2d' | 'module-input'

/**
 * What an IoT Hub subscription filter asks for, or null for any other filter. Matches the
 * filters the SDKs and the seed use (`$iothub/twin/res/#`, `$iothub/twin/PATCH/properties/desired/#`,
 * `$iothub/methods/POST/#`, `devices/<d>/messages/devicebound/#`, `devices/<d>/modules/<m>/inputs/#`)
 * and narrower ones below them.
 */
export function iotHubSubscriptionKind(filter: string): IotHubSubscriptionKind | null {
  if (filter.startsWith('$iothub/twin/res/') || filter === '$iothub/twin/res') return 'twin-response'
  if (filter.startsWith('$iothub/twin/PATCH/properties/desired/') || filter === '$iothub/twin/PATCH/properties/desired') {
    return 'twin-desired'
  }
  if (filter.startsWith('$iothub/methods/POST/') || filter === '$iothub/methods/POST') return 'method-request'
  const parts = filter.split('/')
  if (parts[0] === 'devices' && parts[2] === 'messages' && parts[3] === 'devicebound') return 'c2d'
  if (parts[0] === 'devices' && parts[2] === 'modules' && parts[4] === 'inputs') return 'module-input'
  return null
}

// ---------------------------------------------------------------------------------------------
// Formatting (what the hub publishes, and what device-side helpers publish)

function withBag(prefix: string, properties?: Record<string, string>, systemProperties?: SystemProperties): string {
  return prefix + encodePropertyBag(properties, systemProperties)
}

/** `devices/<d>[/modules/<m>]/messages/events/<bag>` (the SDKs' form, trailing slash included). */
export function formatTelemetryTopic(
  id: Identity,
  properties?: Record<string, string>,
  systemProperties?: SystemProperties,
): string {
  const base = id.moduleId === undefined ? `devices/${id.deviceId}` : `devices/${id.deviceId}/modules/${id.moduleId}`
  return withBag(`${base}/messages/events/`, properties, systemProperties)
}

/** C2D delivery: `devices/<d>/messages/devicebound/<bag>`. */
export function formatC2dTopic(deviceId: string, properties?: Record<string, string>, systemProperties?: SystemProperties): string {
  return withBag(`devices/${deviceId}/messages/devicebound/`, properties, systemProperties)
}

/** Routed message to a module input: `devices/<d>/modules/<m>/inputs/<input>/<bag>`. */
export function formatModuleInputTopic(
  deviceId: string,
  moduleId: string,
  inputName: string,
  properties?: Record<string, string>,
  systemProperties?: SystemProperties,
): string {
  return withBag(`devices/${deviceId}/modules/${moduleId}/inputs/${inputName}/`, properties, systemProperties)
}

/** `$iothub/twin/GET/?$rid=<r>` (rid written as given). */
export function formatTwinGetTopic(rid: string, ridKey: RidKey = '$rid'): string {
  return `$iothub/twin/GET/?${ridKey}=${rid}`
}

/** `$iothub/twin/PATCH/properties/reported/?$rid=<r>`. */
export function formatTwinReportedTopic(rid: string, ridKey: RidKey = '$rid'): string {
  return `$iothub/twin/PATCH/properties/reported/?${ridKey}=${rid}`
}

/** `$iothub/twin/res/<status>/?$rid=<r>[&$version=<n>]`, keyed like the request (`rid` or `$rid`). */
export function formatTwinResponseTopic(status: number, rid: string, ridKey: RidKey = '$rid', version?: number): string {
  const v = version === undefined ? '' : `&$version=${version}`
  return `$iothub/twin/res/${status}/?${ridKey}=${rid}${v}`
}

/** `$iothub/twin/PATCH/properties/desired/?$version=<n>`. */
export function formatTwinDesiredTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`
}

/** `$iothub/methods/POST/<name>/?$rid=<r>`. */
export function formatMethodRequestTopic(methodName: string, rid: string): string {
  return `$iothub/methods/POST/${methodName}/?$rid=${rid}`
}

/** `$iothub/methods/res/<status>/?$rid=<r>` (device side; the hub accepts the seed's form too). */
export function formatMethodResponseTopic(status: number, rid: string): string {
  return `$iothub/methods/res/${status}/?$rid=${rid}`
}
