/**
 * IoT Edge deployment manifests (`az iot edge set-modules --content deployment.json`): parse, and
 * validate the whole manifest with a JSON path per problem before anything is applied.
 *
 * Shapes accepted (what az and the VS Code templates write):
 *   {"modulesContent": {"$edgeAgent": …, "$edgeHub": …, "<module>": …}}
 *   {"content": {"modulesContent": {…}}}            (an `az iot edge deployment` file)
 *   {"$edgeAgent": …, "$edgeHub": …}                (modulesContent itself)
 * Each entry is `{"properties.desired": {…}}`. Trailing commas and comments are tolerated, as for
 * `edgehub set`. Pure: no I/O.
 */
import { InvalidDocumentError, type DocumentIssue } from '../errors.js'
import { validateEdgeHubDesired } from '../edgehub/document.js'
import { describe, pathKey } from '../policy/json-path.js'
import { isJsonObject, parseLenientJson, type JsonObject } from '../policy/lenient-json.js'
import { compileRoutes } from '../routes/index.js'
import { TwinValidationError, validateTwinPatch } from '../twin/validate.js'

export interface ManifestIssue extends DocumentIssue {
  severity: 'error' | 'warning'
}

/** One module listed in `$edgeAgent` desired `modules` (what edgeAgent would run). */
export interface ManifestModule {
  moduleId: string
  image?: string
  status?: string
  /** The `env` values (`{"VAR": {"value": "x"}}` → `VAR=x`), handed to `module run`. */
  env: Record<string, string>
}

export interface DeploymentManifest {
  /** `$edgeAgent` desired properties, verbatim (stored in the `$edgeAgent` module twin). */
  edgeAgentDesired: JsonObject
  /** Modules listed in `$edgeAgent` desired `modules`, in manifest order. */
  modules: ManifestModule[]
  /** `$edgeHub` desired properties (routes, schemaVersion, storeAndForwardConfiguration, mqttBroker). */
  edgeHubDesired: JsonObject
  /** Desired properties of the other modules, by module id. */
  moduleDesired: Record<string, JsonObject>
  warnings: ManifestIssue[]
}

const DESIRED = 'properties.desired'
const AGENT_KEYS = ['schemaVersion', 'runtime', 'systemModules', 'modules']
const MODULE_KEYS = ['version', 'type', 'status', 'restartPolicy', 'startupOrder', 'settings', 'env', 'imagePullPolicy']
const STATUSES = ['running', 'stopped']
const RESTART_POLICIES = ['never', 'on-failure', 'on-unhealthy', 'always']
/** IoT Hub's id alphabet (registry/validate.ts); module ids from a manifest must also not start with `$`. */
const MODULE_ID_RE = /^[A-Za-z0-9\-.+%_#*?!(),:=@']{1,128}$/

/** Joins a base path and a path relative to it (`''`, `a.b`, `["x"]`, `[0]`). */
function under(base: string, rel: string): string {
  if (rel === '') return base
  if (base === '') return rel
  return rel.startsWith('[') ? `${base}${rel}` : `${base}.${rel}`
}

/** Parse and validate a manifest; every problem is reported at once (exit 2), nothing half-read. */
export function parseDeploymentManifest(text: string): DeploymentManifest {
  const issues: ManifestIssue[] = []
  const error = (path: string, message: string): void => void issues.push({ path, message, severity: 'error' })
  const warn = (path: string, message: string): void => void issues.push({ path, message, severity: 'warning' })
  const fail = (): never => {
    const errors = issues.filter((i) => i.severity === 'error')
    const n = errors.length
    throw new InvalidDocumentError(
      `invalid deployment manifest: ${n} error${n === 1 ? '' : 's'} (first: ${errors[0].path || '(document)'}: ${errors[0].message}); nothing was applied`,
      errors.map(({ path, message }) => ({ path, message })),
      'fix every listed path and apply the manifest again',
    )
  }

  const doc = parseLenientJson(text, 'deployment manifest')
  let base = ''
  let content: unknown = doc
  if (isJsonObject(doc) && isJsonObject(doc.content) && 'modulesContent' in doc.content) {
    base = 'content.modulesContent'
    content = doc.content.modulesContent
  } else if (isJsonObject(doc) && 'modulesContent' in doc) {
    base = 'modulesContent'
    content = doc.modulesContent
  }
  if (!isJsonObject(content)) {
    error(base, `expected {"modulesContent": {"$edgeAgent": {…}, "$edgeHub": {…}}}, got ${describe(content)}`)
    return fail()
  }

  /** `{"properties.desired": {…}}` of one modulesContent entry, or undefined (issue recorded). */
  const desiredOf = (key: string, required: boolean): JsonObject | undefined => {
    const p = pathKey(base, key)
    const entry = content[key]
    if (entry === undefined) {
      if (required) error(p, `${key} is missing; a deployment always sets {"${key}": {"properties.desired": {…}}}`)
      return undefined
    }
    if (!isJsonObject(entry)) {
      error(p, `expected {"properties.desired": {…}}, got ${describe(entry)}`)
      return undefined
    }
    for (const k of Object.keys(entry)) if (k !== DESIRED) error(pathKey(p, k), `unexpected property "${k}"; a deployment sets only "properties.desired"`)
    const desired = entry[DESIRED]
    if (!isJsonObject(desired)) {
      error(pathKey(p, DESIRED), `expected an object, got ${desired === undefined ? 'nothing' : describe(desired)}`)
      return undefined
    }
    return desired
  }

  // ---- $edgeAgent: the module list ----
  const agentPath = pathKey(pathKey(base, '$edgeAgent'), DESIRED)
  const agent = desiredOf('$edgeAgent', true)
  const modules: ManifestModule[] = []
  if (agent) {
    for (const k of Object.keys(agent)) if (!AGENT_KEYS.includes(k)) warn(pathKey(agentPath, k), `unknown property "${k}" is ignored; $edgeAgent reads: ${AGENT_KEYS.join(', ')}`)
    const before = issues.length
    const sv = agent.schemaVersion
    if (sv === undefined) error(pathKey(agentPath, 'schemaVersion'), 'schemaVersion is missing; add "schemaVersion": "1.1"')
    else if (typeof sv !== 'string' || !/^1\.\d+(\.\d+)?$/.test(sv)) error(pathKey(agentPath, 'schemaVersion'), `schemaVersion must be a string such as "1.1", got ${describe(sv)}`)
    if (agent.runtime !== undefined && !isJsonObject(agent.runtime)) error(pathKey(agentPath, 'runtime'), `runtime must be an object like {"type": "docker"}, got ${describe(agent.runtime)}`)
    if (agent.systemModules !== undefined && !isJsonObject(agent.systemModules)) error(pathKey(agentPath, 'systemModules'), `systemModules must be an object, got ${describe(agent.systemModules)}`)
    const mods = agent.modules
    const mp = pathKey(agentPath, 'modules')
    if (mods !== undefined && !isJsonObject(mods)) error(mp, `modules must be an object of module id → module, got ${describe(mods)}`)
    else if (mods) {
      for (const [id, m] of Object.entries(mods)) {
        const p = pathKey(mp, id)
        if (id.startsWith('$')) {
          error(p, `"${id}" is an IoT Edge runtime module; declare it under systemModules, not modules`)
          continue
        }
        if (!MODULE_ID_RE.test(id)) error(p, "invalid module id; ids are 1–128 characters of A-Z a-z 0-9 and -.+%_#*?!(),:=@'")
        if (!isJsonObject(m)) {
          error(p, `a module must be an object like {"type": "docker", "settings": {"image": "…"}}, got ${describe(m)}`)
          continue
        }
        const mod = validateModule(m, p, error, warn)
        modules.push({ moduleId: id, ...mod })
      }
    }
    // Stored in the $edgeAgent twin: twin key rules too (once the specific errors above are fixed).
    if (!issues.slice(before).some((i) => i.severity === 'error')) twinIssues(agent, agentPath, error)
  }
  const listed = new Set(modules.map((m) => m.moduleId))

  // ---- $edgeHub: routes and broker settings ----
  const hubPath = pathKey(pathKey(base, '$edgeHub'), DESIRED)
  let edgeHub = desiredOf('$edgeHub', true)
  // Manifests written for IoT Edge 1.0/1.1 say "1.0"/"1.1"; without mqttBroker settings they mean
  // the same under 1.2, which edgemq's broker needs.
  if (edgeHub && (edgeHub.schemaVersion === '1.0' || edgeHub.schemaVersion === '1.1') && edgeHub.mqttBroker === undefined) {
    warn(pathKey(hubPath, 'schemaVersion'), `schemaVersion "${edgeHub.schemaVersion}" is applied as "1.2" (edgemq's MQTT broker needs 1.2; nothing else changes)`)
    edgeHub = { ...edgeHub, schemaVersion: '1.2' }
  }
  if (edgeHub) {
    for (const i of validateEdgeHubDesired(edgeHub)) issues.push({ ...i, path: under(hubPath, i.path) })
    if (isJsonObject(edgeHub.routes)) {
      const strings: Record<string, string> = {}
      for (const [name, r] of Object.entries(edgeHub.routes)) if (typeof r === 'string' && r.trim() !== '') strings[name] = r
      const compiled = compileRoutes(strings)
      for (const i of compiled.issues) error(under(hubPath, pathKey('routes', i.path.slice('routes.'.length))), `invalid route: ${i.message}`)
      for (const r of compiled.routes) {
        if (r.sink.kind === 'module-input' && !listed.has(r.sink.moduleId)) {
          warn(under(hubPath, pathKey('routes', r.name ?? '')), `the route delivers to module "${r.sink.moduleId}", which $edgeAgent does not list`)
        }
        const src = r.source
        if ((src.kind === 'module' || src.kind === 'module-outputs' || src.kind === 'module-output') && !listed.has(src.moduleId)) {
          warn(under(hubPath, pathKey('routes', r.name ?? '')), `the route reads from module "${src.moduleId}", which $edgeAgent does not list`)
        }
      }
    }
  }

  // ---- every other entry: a module's desired properties ----
  const moduleDesired: Record<string, JsonObject> = {}
  for (const key of Object.keys(content)) {
    if (key === '$edgeAgent' || key === '$edgeHub') continue
    const p = pathKey(base, key)
    if (!listed.has(key)) {
      error(p, `desired properties for module "${key}", which $edgeAgent does not list; add it to $edgeAgent's modules or remove this entry`)
      continue
    }
    const desired = desiredOf(key, false)
    if (!desired) continue
    const clean = twinIssues(desired, pathKey(p, DESIRED), error)
    if (clean) moduleDesired[key] = clean
  }

  if (issues.some((i) => i.severity === 'error')) return fail()
  return {
    edgeAgentDesired: agent as JsonObject,
    modules,
    edgeHubDesired: edgeHub as JsonObject,
    moduleDesired,
    warnings: issues.filter((i) => i.severity === 'warning'),
  }
}

/** Twin rules (key names, depth, size) for desired properties stored in a module twin. */
function twinIssues(desired: JsonObject, p: string, error: (p: string, m: string) => void): JsonObject | undefined {
  try {
    return validateTwinPatch(desired, 'desired') as JsonObject
  } catch (err) {
    if (!(err instanceof TwinValidationError)) throw err
    const found = err.issues.length > 0 ? err.issues : [{ path: '', message: err.message }]
    for (const i of found) error(under(p, i.path), i.message)
    return undefined
  }
}

function validateModule(
  m: JsonObject,
  p: string,
  error: (p: string, m: string) => void,
  warn: (p: string, m: string) => void,
): Omit<ManifestModule, 'moduleId'> {
  for (const k of Object.keys(m)) if (!MODULE_KEYS.includes(k)) warn(pathKey(p, k), `unknown property "${k}" is ignored; a module has: ${MODULE_KEYS.join(', ')}`)
  const out: Omit<ManifestModule, 'moduleId'> = { env: {} }
  if (m.type !== undefined && typeof m.type !== 'string') error(pathKey(p, 'type'), `type must be a string such as "docker", got ${describe(m.type)}`)
  if (m.version !== undefined && typeof m.version !== 'string') error(pathKey(p, 'version'), `version must be a string such as "1.0", got ${describe(m.version)}`)
  if (m.status !== undefined) {
    if (typeof m.status !== 'string' || !STATUSES.includes(m.status)) error(pathKey(p, 'status'), `status must be "running" or "stopped", got ${describe(m.status)}`)
    else out.status = m.status
  }
  if (m.restartPolicy !== undefined && (typeof m.restartPolicy !== 'string' || !RESTART_POLICIES.includes(m.restartPolicy))) {
    error(pathKey(p, 'restartPolicy'), `restartPolicy must be one of ${RESTART_POLICIES.map((r) => `"${r}"`).join(', ')}, got ${describe(m.restartPolicy)}`)
  }
  if (m.startupOrder !== undefined && !(typeof m.startupOrder === 'number' && Number.isSafeInteger(m.startupOrder) && m.startupOrder >= 0)) {
    error(pathKey(p, 'startupOrder'), `startupOrder must be a whole number ≥ 0, got ${describe(m.startupOrder)}`)
  }
  const settings = m.settings
  const sp = pathKey(p, 'settings')
  if (settings !== undefined) {
    if (!isJsonObject(settings)) error(sp, `settings must be an object like {"image": "…", "createOptions": "…"}, got ${describe(settings)}`)
    else {
      if (settings.image === undefined) warn(pathKey(sp, 'image'), 'image is missing (edgemq runs no containers, but IoT Edge would refuse this module)')
      else if (typeof settings.image !== 'string') error(pathKey(sp, 'image'), `image must be a string, got ${describe(settings.image)}`)
      else out.image = settings.image
      const co = settings.createOptions
      if (co !== undefined && typeof co !== 'string' && !isJsonObject(co)) error(pathKey(sp, 'createOptions'), `createOptions must be a JSON string or an object, got ${describe(co)}`)
    }
  }
  const env = m.env
  const ep = pathKey(p, 'env')
  if (env !== undefined) {
    if (!isJsonObject(env)) error(ep, `env must be an object like {"VAR": {"value": "x"}}, got ${describe(env)}`)
    else {
      for (const [name, v] of Object.entries(env)) {
        const vp = pathKey(ep, name)
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) error(vp, `"${name}" is not a valid environment variable name`)
        if (!isJsonObject(v) || !('value' in v)) error(vp, `expected {"value": …}, got ${describe(v)}`)
        else if (typeof v.value === 'string' || typeof v.value === 'number' || typeof v.value === 'boolean') out.env[name] = String(v.value)
        else error(pathKey(vp, 'value'), `value must be a string, number or boolean, got ${describe(v.value)}`)
      }
    }
  }
  return out
}
