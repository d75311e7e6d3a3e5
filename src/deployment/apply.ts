/**
 * Applying a deployment manifest to the hub's edge device, as IoT Hub + edgeAgent would:
 * - module identities: one per module in `$edgeAgent` desired `modules` (created when missing);
 *   identities a deployment manages (`managedBy: "iotEdge"`) that the manifest no longer lists are
 *   deleted, as edgeAgent does — a running broker then closes their sessions (change feed, < 1 s).
 *   Modules made by hand (`module create`) are left alone unless a manifest lists them, which
 *   adopts them. `$edgeAgent`/`$edgeHub` are never touched.
 * - `$edgeHub` desired: replaced by the manifest's (a deployment replaces, so a route dropped from
 *   the manifest stops), except that the current `mqttBroker.authorizations` are kept when the
 *   manifest sets none: edgemq's broker lets nobody connect without a policy.
 * - `$edgeAgent` and every other listed module: desired properties replaced by the manifest's.
 * The manifest is validated whole first (manifest.ts); nothing is written when it is invalid.
 */
import type { HubContext } from '../config/home.js'
import { assertNoErrors, validateEdgeHubDesired } from '../edgehub/index.js'
import { UsageError } from '../errors.js'
import { isJsonObject, type JsonObject } from '../policy/lenient-json.js'
import type { ModuleRecord } from '../registry/types.js'
import { setEdgeHubDesired } from '../service/edgehub.js'
import type { HubService } from '../service/hub-service.js'
import type { DeploymentManifest, ManifestIssue } from './manifest.js'

/** What edgeAgent writes in `managedBy` (registry.ts uses it for the runtime modules too). */
export const MANAGED_BY_EDGE = 'iotEdge'

export interface DeploymentResult {
  deviceId: string
  /** Module identities created for this deployment. */
  created: string[]
  /** Listed modules that already existed (keys and generation id unchanged). */
  unchanged: string[]
  /** Listed modules that were made by hand and are now managed by deployments. */
  adopted: string[]
  /** Managed modules the manifest no longer lists: deleted (their clients are disconnected). */
  removed: string[]
  /** Hand-made modules the manifest does not list: left alone. */
  notManaged: string[]
  edgeHub: { desiredVersion: number; routes: string[]; keptAuthorizations: boolean }
  /** Module twins whose desired properties the manifest set. */
  moduleTwins: string[]
  warnings: ManifestIssue[]
}

/** The `$edgeHub` desired document a deployment leaves: the manifest's, plus the kept policy. */
export function edgeHubDocument(manifest: JsonObject, current: Record<string, unknown>): { desired: JsonObject; keptAuthorizations: boolean } {
  const desired = structuredClone(manifest)
  const mb = desired.mqttBroker
  const cur = current.mqttBroker
  const hasOwn = isJsonObject(mb) && mb.authorizations !== undefined
  const curAuth = isJsonObject(cur) ? cur.authorizations : undefined
  if (hasOwn || curAuth === undefined) return { desired, keptAuthorizations: false }
  desired.mqttBroker = { ...(isJsonObject(mb) ? mb : {}), authorizations: structuredClone(curAuth) }
  if (desired.schemaVersion === undefined) desired.schemaVersion = '1.2'
  return { desired, keptAuthorizations: true }
}

export async function applyDeployment(ctx: HubContext, svc: HubService, manifest: DeploymentManifest, opts: { deviceId?: string } = {}): Promise<DeploymentResult> {
  const { registry, store, hub } = ctx
  const deviceId = opts.deviceId ?? hub.edgeDeviceId
  const device = await registry.getDevice(deviceId)
  if (!device.edge) throw new UsageError(`device "${deviceId}" is not an IoT Edge device`, 'deploy modules to an edge device, e.g. --device ' + hub.edgeDeviceId)
  if (deviceId !== hub.edgeDeviceId) {
    throw new UsageError(`edgemq runs the edge hub of "${hub.edgeDeviceId}", not of "${deviceId}"`, `deploy to ${hub.edgeDeviceId} (omit -d), or use a home whose edge device is ${deviceId}`)
  }

  // Everything that can fail validation is checked before the first write.
  const currentHub = await store.getTwin({ deviceId, moduleId: '$edgeHub' })
  const hubDoc = edgeHubDocument(manifest.edgeHubDesired, currentHub?.desired ?? {})
  assertNoErrors(validateEdgeHubDesired(hubDoc.desired), '$edgeHub desired properties of the deployment')

  const existing = new Map<string, ModuleRecord>((await registry.listModules(deviceId)).map((m) => [m.moduleId, m]))
  const listed = new Set(manifest.modules.map((m) => m.moduleId))
  const result: DeploymentResult = {
    deviceId,
    created: [],
    unchanged: [],
    adopted: [],
    removed: [],
    notManaged: [],
    edgeHub: { desiredVersion: 0, routes: Object.keys(isJsonObject(hubDoc.desired.routes) ? hubDoc.desired.routes : {}), keptAuthorizations: hubDoc.keptAuthorizations },
    moduleTwins: [],
    warnings: manifest.warnings,
  }

  for (const { moduleId } of manifest.modules) {
    const cur = existing.get(moduleId)
    if (!cur) {
      await registry.createModule({ deviceId, moduleId, managedBy: MANAGED_BY_EDGE })
      result.created.push(moduleId)
    } else if (cur.managedBy !== MANAGED_BY_EDGE) {
      await store.putModule({ ...cur, managedBy: MANAGED_BY_EDGE, updatedAt: new Date().toISOString() })
      result.adopted.push(moduleId)
    } else result.unchanged.push(moduleId)
  }

  // Twins: through the running broker when there is one, so connected modules get the patch at once.
  for (const [moduleId, desired] of Object.entries(manifest.moduleDesired)) {
    await svc.updateTwin({ deviceId, moduleId }, { desired }, { replace: true })
    result.moduleTwins.push(moduleId)
  }
  await svc.updateTwin({ deviceId, moduleId: '$edgeAgent' }, { desired: manifest.edgeAgentDesired }, { replace: true })
  const r = await setEdgeHubDesired(ctx, hubDoc.desired, { replace: true })
  result.edgeHub.desiredVersion = r.desiredVersion

  for (const [moduleId, m] of existing) {
    if (moduleId.startsWith('$') || listed.has(moduleId)) continue
    if (m.managedBy === MANAGED_BY_EDGE) {
      await registry.deleteModule(deviceId, moduleId)
      result.removed.push(moduleId)
    } else result.notManaged.push(moduleId)
  }
  return result
}

/** The `env` a deployment gave a module (`$edgeAgent` desired `modules.<m>.env`), for `module env`. */
export async function deployedModuleEnv(ctx: HubContext, deviceId: string, moduleId: string): Promise<Record<string, string>> {
  const twin = await ctx.store.getTwin({ deviceId, moduleId: '$edgeAgent' })
  const mods = twin?.desired.modules
  const m = isJsonObject(mods) ? mods[moduleId] : undefined
  const env = isJsonObject(m) ? m.env : undefined
  const out: Record<string, string> = {}
  if (!isJsonObject(env)) return out
  for (const [k, v] of Object.entries(env)) {
    if (isJsonObject(v) && (typeof v.value === 'string' || typeof v.value === 'number' || typeof v.value === 'boolean')) out[k] = String(v.value)
  }
  return out
}
