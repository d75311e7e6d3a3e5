/**
 * IoT Edge automatic deployments (`az iot edge deployment create/list/show/delete`): a manifest
 * with a target condition over device twins and a priority. IoT Hub gives every edge device the
 * highest-priority deployment whose condition it matches (ties: the most recently created), by
 * writing that manifest's desired properties into the device's module twins.
 *
 * edgemq does the same on each create and delete: for the hub's own edge device through
 * `applyDeployment` (module identities, `$edgeHub`, module twins: the broker acts on it), for the
 * registry's other edge devices by writing their `$edgeAgent`/`$edgeHub` desired twins (the part
 * IoT Hub does; their own edgeAgent would do the rest). A device whose winner has not changed is
 * not written again. The deployments live in the hub record, so every process sees them; a twin
 * whose tags change later is re-evaluated at the next create or delete, not at once.
 */
import type { HubContext } from '../config/home.js'
import { ConflictError, NotFoundError, PreconditionFailedError, UsageError } from '../errors.js'
import type { JsonObject } from '../policy/lenient-json.js'
import { parseQuery, queryAll } from '../query/index.js'
import { newEtag } from '../registry/twin-record.js'
import type { EdgeDeployment, EdgeDeploymentState } from '../registry/types.js'
import type { HubService } from '../service/hub-service.js'
import { twinQuerySource } from '../service/twin-view.js'
import { applyDeployment } from './apply.js'
import { parseDeploymentManifest } from './manifest.js'

export type { EdgeDeployment, EdgeDeploymentState }

export interface CreateEdgeDeploymentInput {
  id: string
  /** The manifest text (`{"content": {"modulesContent": …}}` or `{"modulesContent": …}`). */
  content: string
  /** Default: every edge device (az's empty condition targets none; edgemq's single edge hub is the useful default). */
  targetCondition?: string
  priority?: number
  labels?: Record<string, string>
  metrics?: Record<string, string>
}

// az / IoT Hub: lowercase letters, digits and - : + % _ # * ? ! ( ) , = @ ; ' — at most 128.
const ID_RE = /^[a-z0-9\-:+%_#*?!(),=@;']{1,128}$/

const stateOf = (hub: { edgeDeployments?: EdgeDeploymentState }): EdgeDeploymentState => hub.edgeDeployments ?? { deployments: {}, applied: {} }

/** The target condition as IoT Hub reads it: a WHERE over device twins (a bad one: exit 2 with the position). */
function targetQuery(condition: string): string {
  const sql = `SELECT * FROM devices WHERE capabilities.iotEdge = true AND (${condition})`
  parseQuery(sql)
  return sql
}

export async function listEdgeDeployments(ctx: HubContext, opts: { top?: number } = {}): Promise<EdgeDeployment[]> {
  const all = Object.values(stateOf((await ctx.store.getHub()) ?? {}).deployments).sort((a, b) => a.createdTimeUtc.localeCompare(b.createdTimeUtc))
  return opts.top === undefined ? all : all.slice(0, opts.top)
}

export async function getEdgeDeployment(ctx: HubContext, id: string): Promise<EdgeDeployment> {
  const d = stateOf((await ctx.store.getHub()) ?? {}).deployments[id]
  if (!d) throw new NotFoundError(`deployment "${id}" not found`, 'list them with `edgemq edge deployment list`')
  return d
}

export async function createEdgeDeployment(ctx: HubContext, svc: HubService, input: CreateEdgeDeploymentInput): Promise<EdgeDeployment> {
  if (!ID_RE.test(input.id)) {
    throw new UsageError(`invalid deployment id "${input.id}"`, "use at most 128 lowercase letters, digits and - : + % _ # * ? ! ( ) , = @ ; '")
  }
  const manifest = parseDeploymentManifest(input.content)
  const targetCondition = input.targetCondition?.trim() || 'capabilities.iotEdge = true'
  targetQuery(targetCondition)
  const priority = input.priority ?? 0
  if (!Number.isInteger(priority) || priority < 0) throw new UsageError(`--priority must be a whole number ≥ 0, got ${priority}`)
  const now = new Date().toISOString()
  const deployment: EdgeDeployment = {
    id: input.id,
    schemaVersion: '1.0',
    labels: input.labels ?? null,
    content: { modulesContent: { $edgeAgent: { 'properties.desired': manifest.edgeAgentDesired }, $edgeHub: { 'properties.desired': manifest.edgeHubDesired }, ...moduleContent(manifest.moduleDesired) } },
    contentType: 'assignment',
    targetCondition,
    priority,
    createdTimeUtc: now,
    lastUpdatedTimeUtc: now,
    etag: newEtag(),
    metrics: { queries: input.metrics ?? {}, results: {} },
    systemMetrics: {
      queries: { targetedCount: `select deviceId from devices where ${targetCondition}`, appliedCount: `select deviceId from devices.modules where moduleId = '$edgeAgent' and configurations.[[${input.id}]].status = 'Applied'` },
      results: { targetedCount: 0, appliedCount: 0, reportedSuccessfulCount: 0, reportedFailedCount: 0 },
    },
  }
  await ctx.store.updateHub((hub) => {
    const state = stateOf(hub)
    if (state.deployments[input.id]) throw new ConflictError(`deployment "${input.id}" already exists`, 'deployments cannot be changed: delete it and create it again, or use another id')
    return { ...hub, edgeDeployments: { ...state, deployments: { ...state.deployments, [input.id]: deployment } } }
  })
  await reconcile(ctx, svc)
  return getEdgeDeployment(ctx, input.id)
}

export async function deleteEdgeDeployment(ctx: HubContext, svc: HubService, id: string, opts: { etag?: string } = {}): Promise<void> {
  await ctx.store.updateHub((hub) => {
    const state = stateOf(hub)
    const d = state.deployments[id]
    if (!d) throw new NotFoundError(`deployment "${id}" not found`, 'list them with `edgemq edge deployment list`')
    if (opts.etag && opts.etag !== '*' && opts.etag !== d.etag) throw new PreconditionFailedError(`deployment "${id}" has etag ${d.etag}, not ${opts.etag}`, 'show it for the current etag, or omit --etag')
    const deployments = { ...state.deployments }
    delete deployments[id]
    return { ...hub, edgeDeployments: { ...state, deployments } }
  })
  await reconcile(ctx, svc)
}

function moduleContent(desired: Record<string, JsonObject>): JsonObject {
  return Object.fromEntries(Object.entries(desired).map(([m, d]) => [m, { 'properties.desired': d }]))
}

/** Gives every targeted edge device its winning deployment and records the counts. */
async function reconcile(ctx: HubContext, svc: HubService): Promise<void> {
  const state = stateOf((await ctx.store.getHub()) ?? {})
  const deployments = Object.values(state.deployments)
  const source = twinQuerySource(ctx)
  const targeted = new Map<string, string[]>()
  const winner = new Map<string, EdgeDeployment>()
  for (const d of deployments) {
    const ids = (await queryAll(source, targetQuery(d.targetCondition))).map((t) => String(t.deviceId))
    targeted.set(d.id, ids)
    for (const deviceId of ids) {
      const cur = winner.get(deviceId)
      if (!cur || d.priority > cur.priority || (d.priority === cur.priority && d.createdTimeUtc > cur.createdTimeUtc)) winner.set(deviceId, d)
    }
  }
  const applied: EdgeDeploymentState['applied'] = { ...state.applied }
  for (const [deviceId, d] of winner) {
    const last = applied[deviceId]
    if (last && last.id === d.id && last.etag === d.etag) continue
    const manifest = parseDeploymentManifest(JSON.stringify({ content: d.content }))
    if (deviceId === ctx.hub.edgeDeviceId) await applyDeployment(ctx, svc, manifest)
    else {
      await svc.updateTwin({ deviceId, moduleId: '$edgeAgent' }, { desired: manifest.edgeAgentDesired }, { replace: true })
      await svc.updateTwin({ deviceId, moduleId: '$edgeHub' }, { desired: manifest.edgeHubDesired }, { replace: true })
    }
    applied[deviceId] = { id: d.id, etag: d.etag }
  }
  await ctx.store.updateHub((hub) => {
    const cur = stateOf(hub)
    const next: EdgeDeploymentState = { deployments: { ...cur.deployments }, applied }
    for (const d of Object.values(next.deployments)) {
      const results = { ...d.systemMetrics.results, targetedCount: targeted.get(d.id)?.length ?? 0, appliedCount: [...winner.values()].filter((w) => w.id === d.id).length }
      next.deployments[d.id] = { ...d, systemMetrics: { ...d.systemMetrics, results } }
    }
    return { ...hub, edgeDeployments: next }
  })
}
