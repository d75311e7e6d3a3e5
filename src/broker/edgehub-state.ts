/**
 * The broker's live view of the `$edgeHub` desired document: the compiled policy and the
 * typed config (routes, bridges, store and forward). A new document is validated whole;
 * an invalid one is rejected and the last good one stays in force (PROTOCOL.md §3).
 */
import type { EdgeHubConfig } from '../edgehub/config.js'
import { toEdgeHubConfig } from '../edgehub/config.js'
import { InvalidDocumentError } from '../errors.js'
import { compilePolicy, type CompiledPolicy } from '../policy/index.js'

export interface DesiredStatus {
  code: number
  description: string
}

export interface EdgeHubState {
  config: EdgeHubConfig
  /** Undefined when no authorizations are set: nobody may connect. */
  policy?: CompiledPolicy
  desiredVersion: number
}

export type ApplyResult = { ok: true; state: EdgeHubState; status: DesiredStatus } | { ok: false; status: DesiredStatus }

export function emptyEdgeHubState(): EdgeHubState {
  return {
    config: { routes: {}, storeAndForwardConfiguration: { timeToLiveSecs: 7200 }, mqttBroker: { bridges: [] } },
    desiredVersion: 0,
  }
}

/** Validates and compiles a desired document (without `$version`/`$metadata`). */
export function compileEdgeHubDesired(desired: Record<string, unknown>, version: number): ApplyResult {
  const clean: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(desired)) if (!k.startsWith('$')) clean[k] = v
  if (Object.keys(clean).length === 0) return { ok: true, state: { ...emptyEdgeHubState(), desiredVersion: version }, status: { code: 200, description: '' } }
  try {
    const config = toEdgeHubConfig(clean)
    const policy = config.mqttBroker.authorizations ? compilePolicy(config.mqttBroker.authorizations, { basePath: 'mqttBroker.authorizations' }) : undefined
    return { ok: true, state: { config, policy, desiredVersion: version }, status: { code: 200, description: '' } }
  } catch (err) {
    if (err instanceof InvalidDocumentError) {
      const detail = err.issues.length ? err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') : err.message
      return { ok: false, status: { code: 400, description: `invalid $edgeHub desired properties (version ${version}): ${detail}` } }
    }
    throw err
  }
}
