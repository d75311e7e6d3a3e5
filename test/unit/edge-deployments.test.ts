/**
 * IoT Edge automatic deployments (az iot edge deployment …, issue 17): target conditions over
 * device twins, priorities, the hub's edge device applied as `edge set-modules` applies, other edge
 * devices' `$edgeAgent`/`$edgeHub` twins written, fallback on delete, and the refusals.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import {
  applyDeployment,
  createEdgeDeployment,
  deleteEdgeDeployment,
  exportModules,
  getEdgeDeployment,
  listEdgeDeployments,
  parseDeploymentManifest,
  showEdgeDeploymentMetric,
  updateEdgeDeployment,
} from '../../src/deployment/index.js'
import { startHub, type Hub } from '../../src/emulator/index.js'
import { QueryParseError } from '../../src/errors.js'
import { HubService } from '../../src/service/hub-service.js'
import { REPO_ROOT } from '../helpers/paths.js'

const EXAMPLE = readFileSync(join(REPO_ROOT, 'examples', 'deployment.json'), 'utf8')

/** The example manifest with its one module renamed, so two deployments are told apart by what they create. */
const withModule = (name: string) => EXAMPLE.replaceAll('"filter"', `"${name}"`).replaceAll('/modules/filter/', `/modules/${name}/`)

let hub: Hub
let svc: HubService

before(async () => {
  hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: null } })
  svc = new HubService(hub.context)
  await hub.createDevice('edge2', { edge: true })
  await hub.createDevice('leaf')
  for (const id of [hub.edgeDeviceId, 'edge2', 'leaf']) await hub.updateTwin(id, { tags: { site: 'lab' } })
})
after(() => hub?.close())

const modulesOf = async (deviceId: string) => (await hub.context.registry.listModules(deviceId)).map((m) => m.moduleId).filter((m) => !m.startsWith('$')).sort()
const agentModules = async (deviceId: string) => {
  const twin = await hub.context.store.getTwin({ deviceId, moduleId: '$edgeAgent' })
  return Object.keys((twin?.desired.modules as Record<string, unknown> | undefined) ?? {}).sort()
}

test('a deployment reaches every edge device its condition matches: the hub\'s applied, the others\' twins written; leaf devices are not targeted', async () => {
  const d = await createEdgeDeployment(hub.context, svc, { id: 'base', content: withModule('filter'), targetCondition: "tags.site = 'lab'", priority: 1, labels: { ring: 'all' } })
  assert.equal(d.targetCondition, "tags.site = 'lab'")
  assert.deepEqual(d.labels, { ring: 'all' })
  assert.deepEqual(d.systemMetrics.results, { targetedCount: 2, appliedCount: 2, reportedSuccessfulCount: 0, reportedFailedCount: 0 })
  assert.deepEqual(Object.keys(d.content.modulesContent).sort(), ['$edgeAgent', '$edgeHub', 'filter'])
  assert.deepEqual(await modulesOf(hub.edgeDeviceId), ['filter'])
  assert.deepEqual(await agentModules('edge2'), ['filter'])
  const edgeHub = await hub.context.store.getTwin({ deviceId: hub.edgeDeviceId, moduleId: '$edgeHub' })
  assert.ok((edgeHub?.desired.routes as Record<string, string>).filterToUpstream)
})

test('a higher priority wins where both match; deleting it falls back to the next one', async () => {
  const canary = await createEdgeDeployment(hub.context, svc, { id: 'canary', content: withModule('filter2'), targetCondition: `deviceId = '${hub.edgeDeviceId}'`, priority: 5 })
  assert.equal(canary.systemMetrics.results.appliedCount, 1)
  assert.equal((await getEdgeDeployment(hub.context, 'base')).systemMetrics.results.appliedCount, 1, 'base now wins only on edge2')
  assert.deepEqual(await modulesOf(hub.edgeDeviceId), ['filter2'], 'the managed module of the old deployment is removed')
  assert.deepEqual(await agentModules('edge2'), ['filter'], 'edge2 is not targeted by canary')
  assert.deepEqual((await listEdgeDeployments(hub.context)).map((x) => x.id), ['base', 'canary'])

  await assert.rejects(deleteEdgeDeployment(hub.context, svc, 'canary', { etag: 'stale' }), { code: 'PRECONDITION_FAILED' })
  await deleteEdgeDeployment(hub.context, svc, 'canary', { etag: canary.etag })
  assert.deepEqual(await modulesOf(hub.edgeDeviceId), ['filter'])
  assert.equal((await getEdgeDeployment(hub.context, 'base')).systemMetrics.results.appliedCount, 2)
})

test('update (az generic update): priority, target condition, labels and metrics change and the winners are re-evaluated; content and unknown paths are refused', async () => {
  const upd = await createEdgeDeployment(hub.context, svc, { id: 'upd', content: withModule('filter3'), targetCondition: "deviceId = 'edge2'", priority: 0, metrics: { lab: "SELECT deviceId FROM devices WHERE tags.site = 'lab'" } })
  assert.deepEqual(await agentModules('edge2'), ['filter'], 'base (priority 1) still wins on edge2')
  await assert.rejects(updateEdgeDeployment(hub.context, svc, 'upd', { set: ['priority=9'], etag: 'stale' }), { code: 'PRECONDITION_FAILED' })
  const raised = await updateEdgeDeployment(hub.context, svc, 'upd', { set: ['priority=9', 'labels.ring=edge2', 'metrics.queries.edge=SELECT deviceId FROM devices WHERE capabilities.iotEdge = true'], etag: upd.etag })
  assert.equal(raised.priority, 9)
  assert.notEqual(raised.etag, upd.etag)
  assert.deepEqual(raised.labels, { ring: 'edge2' })
  assert.deepEqual(await agentModules('edge2'), ['filter3'], 'now it wins on edge2')
  assert.deepEqual(await showEdgeDeploymentMetric(hub.context, 'upd', 'lab'), { metric: 'lab', query: "SELECT deviceId FROM devices WHERE tags.site = 'lab'", result: [{ deviceId: hub.edgeDeviceId }, { deviceId: 'edge2' }, { deviceId: 'leaf' }] })
  assert.deepEqual((await showEdgeDeploymentMetric(hub.context, 'upd', 'appliedCount', 'system')).result, [{ deviceId: 'edge2' }])
  const moved = await updateEdgeDeployment(hub.context, svc, 'upd', { set: [`targetCondition=deviceId = '${hub.edgeDeviceId}'`], remove: ['labels.ring', 'metrics.queries.edge'] })
  assert.equal(moved.labels, null)
  assert.deepEqual(Object.keys(moved.metrics.queries), ['lab'])
  assert.deepEqual((await showEdgeDeploymentMetric(hub.context, 'upd', 'targetedCount', 'system')).result, [{ deviceId: hub.edgeDeviceId }])
  await assert.rejects(updateEdgeDeployment(hub.context, svc, 'upd', { set: ['content.modulesContent={}'] }), /content cannot be changed once created/)
  await assert.rejects(updateEdgeDeployment(hub.context, svc, 'upd', { set: ['schemaVersion=2'] }), /not a property of a deployment edgemq can change/)
  await assert.rejects(updateEdgeDeployment(hub.context, svc, 'upd', { set: ['targetCondition=tags.x = = 1'] }), QueryParseError)
  await assert.rejects(showEdgeDeploymentMetric(hub.context, 'upd', 'nope'), /user metric "nope" is not defined/)
  await deleteEdgeDeployment(hub.context, svc, 'upd')
})

test('refusals: a taken id, a bad id, a condition that does not parse, an invalid manifest, an unknown deployment; nothing is stored', async () => {
  await assert.rejects(createEdgeDeployment(hub.context, svc, { id: 'base', content: EXAMPLE }), { code: 'CONFLICT' })
  await assert.rejects(createEdgeDeployment(hub.context, svc, { id: 'Upper', content: EXAMPLE }), /invalid deployment id/)
  await assert.rejects(createEdgeDeployment(hub.context, svc, { id: 'bad-tc', content: EXAMPLE, targetCondition: "tags.site = = 'x'" }), (err: Error & { exitCode?: number }) => err.exitCode === 2)
  await assert.rejects(createEdgeDeployment(hub.context, svc, { id: 'bad-manifest', content: '{"modulesContent": {}}' }), /invalid deployment manifest/)
  await assert.rejects(getEdgeDeployment(hub.context, 'nope'), { code: 'NOT_FOUND' })
  await assert.rejects(deleteEdgeDeployment(hub.context, svc, 'nope'), { code: 'NOT_FOUND' })
  assert.deepEqual((await listEdgeDeployments(hub.context)).map((x) => x.id), ['base'])
})

test("edge export-modules: every module twin's desired properties as a deployment's content, without $metadata/$version (az)", async () => {
  await applyDeployment(hub.context, svc, parseDeploymentManifest(EXAMPLE))
  await hub.createModule(hub.edgeDeviceId, 'handmade')
  const { content } = await exportModules(hub.context, hub.edgeDeviceId)
  const mc = content.modulesContent
  assert.deepEqual(Object.keys(mc).sort(), ['$edgeAgent', '$edgeHub', 'filter', 'handmade'])
  assert.deepEqual(mc.filter, { 'properties.desired': { threshold: 30 } })
  assert.deepEqual(mc.handmade, { 'properties.desired': {} }, 'a module without desired properties is listed too, as az lists it')
  const agent = mc.$edgeAgent['properties.desired'] as { modules: Record<string, unknown> }
  assert.ok('filter' in agent.modules)
  const edgeHub = mc.$edgeHub['properties.desired']
  assert.ok('routes' in edgeHub)
  for (const m of Object.values(mc)) assert.ok(!('$metadata' in m['properties.desired']) && !('$version' in m['properties.desired']))
  await hub.context.registry.deleteModule(hub.edgeDeviceId, 'handmade')
})
