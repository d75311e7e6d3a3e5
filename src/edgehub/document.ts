/**
 * The `$edgeHub` desired document (PRODUCT.md "Edge hub configuration", PROTOCOL.md §3, §5, §6):
 * parse either shape, validate every field with its JSON path, merge desired patches.
 * Paths are relative to the desired object (`mqttBroker.authorizations[2].allow[0]…`) whichever
 * shape the file had, so they read the same for `edgehub set` and `policy validate`.
 */
import { InvalidDocumentError } from '../errors.js'
import { isJsonObject, parseLenientJson, type JsonObject, type JsonValue } from '../policy/lenient-json.js'
import { describe, pathIndex, pathKey } from '../policy/json-path.js'
import { topicFilterError } from '../policy/topic.js'
import type { PolicyIssue } from '../policy/types.js'
import { validatePolicy } from '../policy/validate.js'
import { compileRoutes } from '../routes/index.js'

export type EdgeHubIssue = PolicyIssue

const WRAPPER_KEY = '$edgeHub'
const DESIRED_KEY = 'properties.desired'
const TOP_KEYS = ['schemaVersion', 'routes', 'storeAndForwardConfiguration', 'mqttBroker']
const BROKER_KEYS = ['authorizations', 'bridges']
const BRIDGE_KEYS = ['endpoint', 'settings']
const SETTING_KEYS = ['direction', 'topic', 'inPrefix', 'outPrefix']
export const DEFAULT_TIME_TO_LIVE_SECS = 7200

/**
 * Parse a `$edgeHub` document: the full `{"$edgeHub": {"properties.desired": {…}}}` or the bare
 * desired object. Trailing commas and comments are tolerated (the seed's sample has them).
 * Does not validate the content (patches may hold `null` deletions): see validateEdgeHubDesired.
 * @throws InvalidDocumentError on bad JSON or a shape that is neither.
 */
export function parseEdgeHubDocument(text: string): JsonObject {
  const doc = parseLenientJson(text, '$edgeHub document')
  if (!isJsonObject(doc)) {
    throw new InvalidDocumentError('$edgeHub document must be a JSON object', [
      { path: '', message: 'expected {"$edgeHub": {"properties.desired": {…}}} or the desired object itself ({"schemaVersion": "1.2", …})' },
    ])
  }
  if (!(WRAPPER_KEY in doc)) return doc
  const issues: { path: string; message: string }[] = []
  for (const key of Object.keys(doc)) {
    if (key !== WRAPPER_KEY) issues.push({ path: pathKey('', key), message: `unexpected property "${key}" next to "$edgeHub"; keep only "$edgeHub" (or send the bare desired object)` })
  }
  const wrapper = doc[WRAPPER_KEY]
  const desired = isJsonObject(wrapper) ? wrapper[DESIRED_KEY] : undefined
  if (!isJsonObject(wrapper) || !isJsonObject(desired)) {
    issues.push({ path: pathKey(pathKey('', WRAPPER_KEY), DESIRED_KEY), message: 'expected {"$edgeHub": {"properties.desired": {…}}} with an object inside' })
  } else {
    for (const key of Object.keys(wrapper)) {
      if (key !== DESIRED_KEY) issues.push({ path: pathKey(pathKey('', WRAPPER_KEY), key), message: `unexpected property "${key}"; only "properties.desired" can be set` })
    }
  }
  if (issues.length > 0 || !isJsonObject(desired)) throw new InvalidDocumentError(`invalid $edgeHub document (${issues[0].path}: ${issues[0].message})`, issues)
  return desired
}

/** Does `v` say schema 1.2 or a later 1.x (PROTOCOL.md §3)? */
export function isSupportedSchemaVersion(v: string): boolean {
  const m = /^1\.(\d+)(\.\d+)?$/.exec(v)
  return m !== null && Number(m[1]) >= 2
}

/**
 * Validate a desired document (after merging patches). Returns every issue; errors make the
 * document invalid, warnings are advice. An empty document (only twin metadata like `$version`)
 * is valid and means "all defaults"; anything else needs `schemaVersion`.
 * Unknown properties: warnings at the top level and under `mqttBroker` (future settings),
 * errors inside policy statements and bridges (a typo there silently changes behaviour).
 */
export function validateEdgeHubDesired(desired: unknown): EdgeHubIssue[] {
  const issues: EdgeHubIssue[] = []
  const error = (path: string, message: string): void => void issues.push({ path, message, severity: 'error' })
  const warn = (path: string, message: string): void => void issues.push({ path, message, severity: 'warning' })
  if (!isJsonObject(desired)) {
    error('', `the $edgeHub desired properties must be an object, got ${describe(desired)}`)
    return issues
  }
  const keys = Object.keys(desired).filter((k) => !k.startsWith('$')) // twin metadata: $version, $metadata
  for (const k of keys) if (!TOP_KEYS.includes(k)) warn(pathKey('', k), `unknown property "${k}" is ignored; $edgeHub reads: ${TOP_KEYS.join(', ')}`)

  const sv = desired.schemaVersion
  if (sv === undefined) {
    if (keys.length > 0) error('schemaVersion', 'schemaVersion is missing; add "schemaVersion": "1.2" (the MQTT broker settings need 1.2 or a later 1.x)')
  } else if (typeof sv !== 'string') {
    error('schemaVersion', `schemaVersion must be a string such as "1.2", got ${describe(sv)}`)
  } else if (!isSupportedSchemaVersion(sv)) {
    error('schemaVersion', `schemaVersion "${sv}" is not supported; use "1.2" (or a later 1.x): the MQTT broker and its authorization policy need $edgeHub schema 1.2`)
  }

  const routes = desired.routes
  if (routes !== undefined) {
    if (!isJsonObject(routes)) error('routes', `routes must be an object of name → route, e.g. {"Route1": "FROM /messages/* INTO $upstream"}, got ${describe(routes)}`)
    else {
      // The route grammar itself lives in src/routes: a route that does not parse is refused
      // here, with its column, rather than silently dropped by the broker.
      for (const [name, r] of Object.entries(routes)) {
        const p = pathKey('routes', name)
        if (typeof r === 'string' && r.trim().length === 0) error(p, 'the route is empty; write "FROM <source> [WHERE <condition>] INTO <sink>" or remove it (null in a patch)')
        else for (const issue of compileRoutes({ [name]: r }).issues) error(issue.path.replace(`routes.${name}`, p), issue.message)
      }
    }
  }

  const sf = desired.storeAndForwardConfiguration
  if (sf !== undefined) {
    if (!isJsonObject(sf)) error('storeAndForwardConfiguration', `storeAndForwardConfiguration must be an object like {"timeToLiveSecs": 7200}, got ${describe(sf)}`)
    else {
      for (const k of Object.keys(sf)) if (k !== 'timeToLiveSecs') warn(pathKey('storeAndForwardConfiguration', k), `unknown property "${k}" is ignored; supported: timeToLiveSecs`)
      const ttl = sf.timeToLiveSecs
      if (ttl !== undefined && !(typeof ttl === 'number' && Number.isSafeInteger(ttl) && ttl >= 0)) {
        error('storeAndForwardConfiguration.timeToLiveSecs', `timeToLiveSecs must be a whole number of seconds ≥ 0 (default ${DEFAULT_TIME_TO_LIVE_SECS}), got ${describe(ttl)}`)
      }
    }
  }

  const mb = desired.mqttBroker
  if (mb !== undefined) {
    if (!isJsonObject(mb)) error('mqttBroker', `mqttBroker must be an object with "authorizations" and/or "bridges", got ${describe(mb)}`)
    else {
      for (const k of Object.keys(mb)) if (!BROKER_KEYS.includes(k)) warn(pathKey('mqttBroker', k), `unknown property "${k}" is ignored; mqttBroker reads: ${BROKER_KEYS.join(', ')}`)
      if (mb.authorizations !== undefined) issues.push(...validatePolicy(mb.authorizations, 'mqttBroker.authorizations'))
      if (mb.bridges !== undefined) validateBridges(mb.bridges, 'mqttBroker.bridges', error, warn)
    }
  }
  return issues
}

function validateBridges(bridges: unknown, bp: string, error: (p: string, m: string) => void, warn: (p: string, m: string) => void): void {
  if (!Array.isArray(bridges)) {
    error(bp, `bridges must be an array like [{"endpoint": "$upstream", "settings": [{"direction": "out", "topic": "#"}]}], got ${describe(bridges)}`)
    return
  }
  let upstreams = 0
  bridges.forEach((b: unknown, bi) => {
    const p = pathIndex(bp, bi)
    if (!isJsonObject(b)) return error(p, `a bridge must be an object with "endpoint" and "settings", got ${describe(b)}`)
    for (const k of Object.keys(b)) if (!BRIDGE_KEYS.includes(k)) error(pathKey(p, k), `unknown property "${k}"; a bridge has only: ${BRIDGE_KEYS.join(', ')}`)
    const ep = b.endpoint
    if (ep === undefined) error(pathKey(p, 'endpoint'), 'endpoint is missing; use "$upstream" (the parent set by `edgemq hub set-upstream`)')
    else if (ep !== '$upstream') error(pathKey(p, 'endpoint'), `endpoint must be "$upstream" (the only bridge target IoT Edge supports), got ${describe(ep)}`)
    else if (++upstreams === 2) error(pathKey(p, 'endpoint'), 'a second bridge to "$upstream": merge its settings into the first (two bridges would forward every message twice)')

    const settings = b.settings
    const sp = pathKey(p, 'settings')
    if (settings === undefined) return error(sp, 'settings is missing; list what to forward, e.g. [{"direction": "out", "topic": "#"}]')
    if (!Array.isArray(settings)) return error(sp, `settings must be an array of {"direction", "topic", "inPrefix", "outPrefix"}, got ${describe(settings)}`)
    if (settings.length === 0) warn(sp, 'settings is empty: this bridge forwards nothing')
    settings.forEach((s: unknown, si) => {
      const q = pathIndex(sp, si)
      if (!isJsonObject(s)) return error(q, `a setting must be an object like {"direction": "out", "topic": "#"}, got ${describe(s)}`)
      for (const k of Object.keys(s)) if (!SETTING_KEYS.includes(k)) error(pathKey(q, k), `unknown property "${k}"; a setting has only: ${SETTING_KEYS.join(', ')}`)
      const dir = s.direction
      if (dir === undefined) error(pathKey(q, 'direction'), 'direction is missing; use "in", "out" or "both"')
      else if (dir !== 'in' && dir !== 'out' && dir !== 'both') error(pathKey(q, 'direction'), `direction must be "in", "out" or "both", got ${describe(dir)}`)
      const topic = s.topic
      if (topic === undefined) error(pathKey(q, 'topic'), 'topic is missing; give a topic filter, or "" for everything below the prefixes')
      else if (typeof topic !== 'string') error(pathKey(q, 'topic'), `topic must be a topic filter string (or "" for everything below the prefixes), got ${describe(topic)}`)
      else if (topic !== '') {
        const e = topicFilterError(topic)
        if (e) error(pathKey(q, 'topic'), `invalid topic filter "${topic}": ${e}`)
      }
      for (const k of ['inPrefix', 'outPrefix'] as const) {
        const v = s[k]
        if (v === undefined) continue
        if (typeof v !== 'string') error(pathKey(q, k), `${k} must be a string (literal topic text), got ${describe(v)}`)
        else if (/[+#]/.test(v) || v.includes('\u0000')) error(pathKey(q, k), `${k} "${v}" is literal topic text: it must not contain + or # (put wildcards in "topic")`)
      }
    })
  })
}

/**
 * Apply a desired-properties patch with JSON merge-patch semantics (RFC 7386), as IoT Hub
 * does for twin desired patches: `null` deletes, objects merge recursively, anything else
 * (arrays included) replaces. Neither argument is modified.
 */
export function mergeDesiredPatch(current: JsonObject, patch: JsonObject): JsonObject {
  return mergeObject(current, patch)
}

function mergeObject(target: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = {}
  for (const [k, v] of Object.entries(target)) setKey(out, k, v)
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else if (isJsonObject(v)) setKey(out, k, mergeObject(Object.hasOwn(out, k) && isJsonObject(out[k]) ? (out[k] as JsonObject) : {}, v))
    else setKey(out, k, structuredClone(v)) // arrays and scalars replace, verbatim
  }
  return out
}

/** Own-property write: a JSON key "__proto__" must stay data, never reach the prototype. */
function setKey(o: JsonObject, k: string, v: JsonValue): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}
