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

/**
 * az `edge deployment update -d <id> --set …` / `--remove …` (generic update): what IoT Hub lets
 * change on a deployment, `labels[.<k>]`, `metrics.queries.<k>`, `priority` and `targetCondition`
 * (its content is fixed once created); then every edge device gets its winner again.
 */
export async function updateEdgeDeployment(ctx: HubContext, svc: HubService, id: string, change: { set?: string[]; remove?: string[]; etag?: string }): Promise<EdgeDeployment> {
  await ctx.store.updateHub((hub) => {
    const state = stateOf(hub)
    const cur = state.deployments[id]
    if (!cur) throw new NotFoundError(`deployment "${id}" not found`, 'list them with `edgemq edge deployment list`')
    if (change.etag && change.etag !== '*' && change.etag !== cur.etag) throw new PreconditionFailedError(`deployment "${id}" has etag ${cur.etag}, not ${change.etag}`, 'show it for the current etag, or omit --etag')
    const d: EdgeDeployment = { ...cur, labels: cur.labels ? { ...cur.labels } : null, metrics: { ...cur.metrics, queries: { ...cur.metrics.queries } } }
    for (const s of change.set ?? []) {
      const eq = s.indexOf('=')
      if (eq <= 0) throw new UsageError(`--set "${s}" is not path=value`)
      setPath(d, s.slice(0, eq).trim(), s.slice(eq + 1))
    }
    for (const path of change.remove ?? []) setPath(d, path.trim(), undefined)
    const next = { ...d, etag: newEtag(), lastUpdatedTimeUtc: new Date().toISOString() }
    return { ...hub, edgeDeployments: { ...state, deployments: { ...state.deployments, [id]: next } } }
  })
  await reconcile(ctx, svc)
  return getEdgeDeployment(ctx, id)
}

const SETTABLE = 'labels.<key>, labels (a JSON object), metrics.queries.<name>, priority, targetCondition'

/** One `--set path=value` (`value` undefined: `--remove path`) on a deployment being updated. */
function setPath(d: EdgeDeployment, path: string, value: string | undefined): void {
  const label = /^labels\.(.+)$/.exec(path)
  const metric = /^metrics\.queries\.(.+)$/.exec(path)
  if (label) {
    const labels = { ...(d.labels ?? {}) }
    if (value === undefined) delete labels[label[1]]
    else Object.defineProperty(labels, label[1], { value, enumerable: true, writable: true, configurable: true })
    d.labels = Object.keys(labels).length > 0 ? labels : null
  } else if (metric) {
    if (value === undefined) delete d.metrics.queries[metric[1]]
    else {
      parseQuery(value)
      Object.defineProperty(d.metrics.queries, metric[1], { value, enumerable: true, writable: true, configurable: true })
    }
  } else if (path === 'labels') {
    if (value === undefined) d.labels = null
    else {
      const v = JSON.parse(value) as unknown
      if (!v || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new UsageError('--set labels= takes a JSON object of strings')
      d.labels = v as Record<string, string>
    }
  } else if (path === 'priority' && value !== undefined) {
    if (!/^\d+$/.test(value)) throw new UsageError(`--set priority: "${value}" is not a whole number ≥ 0`)
    d.priority = Number(value)
  } else if (path === 'targetCondition' && value !== undefined) {
    const condition = value.replace(/^"(.*)"$/s, '$1').trim() || 'capabilities.iotEdge = true'
    targetQuery(condition)
    d.targetCondition = condition
    d.systemMetrics = { ...d.systemMetrics, queries: { ...d.systemMetrics.queries, targetedCount: `select deviceId from devices where ${condition}` } }
  } else if (path === 'content' || path.startsWith('content.')) {
    throw new UsageError("a deployment's content cannot be changed once created (IoT Hub)", 'create a new deployment with the new content (and a higher priority), then delete this one')
  } else {
    throw new UsageError(`${value === undefined ? '--remove' : '--set'} ${path}: not a property of a deployment edgemq can change`, `changeable: ${SETTABLE}`)
  }
}

/**
 * az `edge deployment show-metric -d <id> -m <metric> [--mt user|system]`: the metric's query and its
 * result rows. User metrics run their query over the twins; the system ones (targetedCount,
 * appliedCount) list the devices the deployment targets / was applied to.
 */
export async function showEdgeDeploymentMetric(ctx: HubContext, id: string, metricId: string, type: 'user' | 'system' = 'user'): Promise<{ metric: string; query: string; result: unknown[] }> {
  const d = await getEdgeDeployment(ctx, id)
  const queries = type === 'system' ? d.systemMetrics.queries : d.metrics.queries
  if (!Object.prototype.hasOwnProperty.call(queries, metricId)) {
    throw new UsageError(`the ${type} metric "${metricId}" is not defined in the deployment "${id}"`, `its ${type} metrics: ${Object.keys(queries).join(', ') || 'none'}`)
  }
  const query = queries[metricId]
  if (type === 'user') return { metric: metricId, query, result: await queryAll(twinQuerySource(ctx), query) }
  const state = stateOf((await ctx.store.getHub()) ?? {})
  const deviceIds =
    metricId === 'targetedCount'
      ? (await queryAll(twinQuerySource(ctx), targetQuery(d.targetCondition))).map((t) => String(t.deviceId))
      : Object.entries(state.applied)
          .filter(([, a]) => a.id === id)
          .map(([deviceId]) => deviceId)
  return { metric: metricId, query, result: deviceIds.sort().map((deviceId) => ({ deviceId })) }
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
