/** A typed, defaulted view of a valid `$edgeHub` desired document. */
import { InvalidDocumentError } from '../errors.js'
import { compilePolicy, type CompiledPolicy } from '../policy/compile.js'
import { isJsonObject, parseLenientJson, type JsonObject } from '../policy/lenient-json.js'
import type { AuthorizationStatement } from '../policy/types.js'
import { DEFAULT_TIME_TO_LIVE_SECS, parseEdgeHubDocument, validateEdgeHubDesired, type EdgeHubIssue } from './document.js'

/** A route: its text, or schema 1.1+'s object form. */
export type RouteSpec = string | { route: string; priority?: number; timeToLiveSecs?: number }

export type BridgeDirection = 'in' | 'out' | 'both'

/** One `mqttBroker.bridges[].settings[]` entry (PROTOCOL.md §6). Prefixes default to "". */
export interface BridgeSetting {
  direction: BridgeDirection
  /** A topic filter, or "" for everything below the prefixes. */
  topic: string
  inPrefix: string
  outPrefix: string
}

export interface BridgeConfig {
  endpoint: '$upstream'
  settings: BridgeSetting[]
}

export interface EdgeHubConfig {
  /** "1.2" or later 1.x; undefined only for an empty document. */
  schemaVersion?: string
  /** Route name → route text; parsed by the routes module. */
  routes: Record<string, RouteSpec>
  storeAndForwardConfiguration: { timeToLiveSecs: number }
  mqttBroker: {
    /**
     * The policy statements; undefined when the document has none, so the caller chooses the
     * fallback (e.g. DEFAULT_AUTHORIZATIONS) rather than silently denying every client.
     */
    authorizations?: AuthorizationStatement[]
    bridges: BridgeConfig[]
  }
}

/** The seed's "default authorization policy": every registered identity may connect. */
export const DEFAULT_AUTHORIZATIONS: readonly AuthorizationStatement[] = Object.freeze([
  Object.freeze({ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }),
])

/** Throw InvalidDocumentError (exit 2) if `issues` has errors. */
export function assertNoErrors(issues: readonly EdgeHubIssue[], what = '$edgeHub desired properties'): void {
  const errors = issues.filter((i) => i.severity === 'error')
  if (errors.length === 0) return
  const n = errors.length
  throw new InvalidDocumentError(
    `invalid ${what}: ${n} error${n === 1 ? '' : 's'} (first: ${errors[0].path || '(document)'}: ${errors[0].message})`,
    errors.map(({ path, message }) => ({ path, message })),
    'fix every listed path; `edgemq policy validate <file>` checks a file offline',
  )
}

/**
 * Validate a desired document and return its typed view with defaults.
 * @throws InvalidDocumentError with every error and its path.
 */
export function toEdgeHubConfig(desired: unknown): EdgeHubConfig {
  assertNoErrors(validateEdgeHubDesired(desired))
  const d = desired as JsonObject
  const routes: Record<string, RouteSpec> = {}
  if (isJsonObject(d.routes)) for (const [k, v] of Object.entries(d.routes)) if (typeof v === 'string' || isJsonObject(v)) routes[k] = v as RouteSpec
  const sf = isJsonObject(d.storeAndForwardConfiguration) ? d.storeAndForwardConfiguration : {}
  const mb = isJsonObject(d.mqttBroker) ? d.mqttBroker : {}
  const bridges: BridgeConfig[] = []
  for (const b of Array.isArray(mb.bridges) ? mb.bridges : []) {
    if (!isJsonObject(b) || !Array.isArray(b.settings)) continue
    bridges.push({
      endpoint: '$upstream',
      settings: b.settings.filter(isJsonObject).map((s) => ({
        direction: s.direction as BridgeDirection,
        topic: s.topic as string,
        inPrefix: typeof s.inPrefix === 'string' ? s.inPrefix : '',
        outPrefix: typeof s.outPrefix === 'string' ? s.outPrefix : '',
      })),
    })
  }
  return {
    schemaVersion: typeof d.schemaVersion === 'string' ? d.schemaVersion : undefined,
    routes,
    storeAndForwardConfiguration: { timeToLiveSecs: typeof sf.timeToLiveSecs === 'number' ? sf.timeToLiveSecs : DEFAULT_TIME_TO_LIVE_SECS },
    mqttBroker: {
      authorizations: Array.isArray(mb.authorizations) ? (structuredClone(mb.authorizations) as unknown as AuthorizationStatement[]) : undefined,
      bridges,
    },
  }
}

/** Parse (either shape, lenient JSON) + validate + view. */
export function loadEdgeHubConfig(text: string): EdgeHubConfig {
  return toEdgeHubConfig(parseEdgeHubDocument(text))
}

/**
 * Compile the policy of a file for `policy validate` / `policy check`: a `$edgeHub` document
 * (either shape, fully validated), a bare `authorizations` array, or `{"authorizations": [...]}`.
 * @throws InvalidDocumentError with every error and its path.
 */
export function loadPolicyDocument(text: string): CompiledPolicy {
  const value = parseLenientJson(text, 'policy document')
  if (Array.isArray(value)) return compilePolicy(value)
  if (isJsonObject(value) && Object.keys(value).length === 1 && 'authorizations' in value) return compilePolicy(value.authorizations)
  const config = loadEdgeHubConfig(text)
  return compilePolicy(config.mqttBroker.authorizations ?? [], { basePath: 'mqttBroker.authorizations' })
}
