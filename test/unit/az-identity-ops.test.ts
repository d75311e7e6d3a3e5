/**
 * Issue 17: az's identity operations as library calls on a real in-process hub — renew-key
 * (primary/secondary/swap, bulk), children add/list/remove, parent show/set (with --force rules),
 * generic `update --set`, `delete --etag`; az's three-state flags (`--ee true`) and monitor-events'
 * event shape for `--props sys app anno all` and `--ct`.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { parseAuthType } from '../../src/cli/auth-type.js'
import { defaultBareValue, normalizeThreeState } from '../../src/cli/three-state.js'
import { startHub, type Hub, type TwinUpdate } from '../../src/emulator/index.js'
import { ConflictError, PreconditionFailedError, UnauthorizedError, UsageError } from '../../src/errors.js'
import { addChildren, deviceSetPatch, listChildren, mergeDefined, moduleSetPatch, removeChildren, renewDeviceKeys, renewModuleKeys, setParent, showParent, twinSetPatch } from '../../src/service/identity.js'
import { hubConnectionStrings } from '../../src/service/connection-strings.js'
import { checkHubTarget } from '../../src/service/hub-target.js'
import { monitorView, parseMonitorProps, twinReplacement, type WireEvent } from '../../src/service/hub-service.js'

describe('identity operations on a hub', () => {
  let hub: Hub
  before(async () => {
    hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: null } })
    await hub.createDevice('gw-a', { edge: true })
    await hub.createDevice('gw-b', { edge: true })
    for (const id of ['leaf-1', 'leaf-2', 'leaf-3']) await hub.createDevice(id)
    await hub.createDevice('cam', { auth: 'selfSigned', primaryThumbprint: 'AB'.repeat(20) })
    await hub.createModule('leaf-1', 'm1')
    await hub.createModule('leaf-1', 'm2')
  })
  after(() => hub?.close())

  test('renew-key: primary and secondary get new keys, swap exchanges them; a thumbprint device is refused', async () => {
    const ctx = hub.context
    const before = await ctx.registry.getDevice('leaf-1')
    const primary = await renewDeviceKeys(ctx, ['leaf-1'], 'primary')
    assert.ok('authentication' in primary)
    assert.notEqual(primary.authentication.symmetricKey.primaryKey, before.primaryKey)
    assert.equal(primary.authentication.symmetricKey.secondaryKey, before.secondaryKey)
    const secondary = await renewDeviceKeys(ctx, ['leaf-1'], 'secondary')
    assert.ok('authentication' in secondary)
    assert.notEqual(secondary.authentication.symmetricKey.secondaryKey, before.secondaryKey)
    const swapped = await renewDeviceKeys(ctx, ['leaf-1'], 'swap')
    assert.ok('authentication' in swapped)
    assert.equal(swapped.authentication.symmetricKey.primaryKey, secondary.authentication.symmetricKey.secondaryKey)
    assert.equal(swapped.authentication.symmetricKey.secondaryKey, secondary.authentication.symmetricKey.primaryKey)
    // The old key no longer signs: the connection string changed with the key.
    assert.ok((await hub.deviceConnectionString('leaf-1')).includes(`SharedAccessKey=${String(swapped.authentication.symmetricKey.primaryKey)};`))
    await assert.rejects(renewDeviceKeys(ctx, ['cam'], 'primary'), /authenticates with selfSigned, not sas/)
    await assert.rejects(renewDeviceKeys(ctx, ['leaf-1', 'leaf-2'], 'swap'), /bulk key swap is not supported/)
    await assert.rejects(renewDeviceKeys(ctx, ['leaf-1'], 'primary', { etag: 'stale' }), /etag "stale" does not match/)
  })

  test("renew-key in bulk: * renews every SAS device and skips X.509 ones, in az's bulk result shape", async () => {
    const ctx = hub.context
    const keys = new Map((await ctx.registry.listDevices()).map((d) => [d.deviceId, d.secondaryKey]))
    const r = await renewDeviceKeys(ctx, ['*'], 'secondary')
    assert.ok('rotatedKeys' in r)
    assert.equal(r.policyKey, 'secondaryKey')
    assert.deepEqual(r.errors, [])
    const ids = r.rotatedKeys.map((k) => k.id)
    assert.ok(!ids.includes('cam'))
    assert.ok(ids.includes('leaf-2') && ids.includes(hub.edgeDeviceId))
    assert.ok(r.rotatedKeys.every((k) => k.moduleId === undefined), 'no modules without --include-modules')
    for (const k of r.rotatedKeys) {
      const d = await ctx.registry.getDevice(k.id)
      assert.notEqual(d.secondaryKey, keys.get(k.id), k.id)
      assert.equal(k.secondaryKey, d.secondaryKey, 'rotatedKeys carries the new key')
    }
  })

  test('renew-key --include-modules: the named devices and their SAS modules, in the bulk shape; swap ignores it (as az)', async () => {
    const ctx = hub.context
    const before = await ctx.registry.getModule('leaf-1', 'm2')
    const r = await renewDeviceKeys(ctx, ['leaf-1'], 'primary', { includeModules: true })
    assert.ok('rotatedKeys' in r)
    assert.deepEqual(
      r.rotatedKeys.map((k) => [k.id, k.moduleId]),
      [
        ['leaf-1', undefined],
        ['leaf-1', 'm1'],
        ['leaf-1', 'm2'],
      ],
    )
    const after = await ctx.registry.getModule('leaf-1', 'm2')
    assert.notEqual(after.primaryKey, before.primaryKey)
    assert.equal(r.rotatedKeys[2].primaryKey, after.primaryKey)
    const swapped = await renewDeviceKeys(ctx, ['leaf-1'], 'swap', { includeModules: true })
    assert.ok('authentication' in swapped, 'swap prints the device')
  })

  test("module renew-key: one module → its identity; * → az's bulk result", async () => {
    const ctx = hub.context
    const m1 = await ctx.registry.getModule('leaf-1', 'm1')
    const one = await renewModuleKeys(ctx, 'leaf-1', ['m1'], 'primary')
    assert.ok('moduleId' in one)
    assert.notEqual(one.authentication.symmetricKey.primaryKey, m1.primaryKey)
    const bulk = await renewModuleKeys(ctx, 'leaf-1', ['*'], 'secondary')
    assert.ok('rotatedKeys' in bulk)
    assert.deepEqual(
      bulk.rotatedKeys.map((k) => [k.id, k.moduleId, k.secondaryKey]),
      await Promise.all(['m1', 'm2'].map(async (m) => ['leaf-1', m, (await ctx.registry.getModule('leaf-1', m)).secondaryKey])),
    )
  })

  test('children add / list / remove; parent show / set; --force rules', async () => {
    const ctx = hub.context
    await addChildren(ctx, 'gw-a', ['leaf-1', 'leaf-2'])
    assert.deepEqual(await listChildren(ctx, 'gw-a'), ['leaf-1', 'leaf-2'])
    assert.equal((await showParent(ctx, 'leaf-1')).deviceId, 'gw-a')
    // Already a child of gw-a: moving it to gw-b needs --force; nothing changes without it.
    await assert.rejects(addChildren(ctx, 'gw-b', ['leaf-3', 'leaf-1']), (e: unknown) => e instanceof ConflictError && /already has parent "gw-a"/.test(e.message))
    assert.deepEqual(await listChildren(ctx, 'gw-b'), [])
    await assert.rejects(setParent(ctx, 'leaf-2', 'gw-b'), ConflictError)
    await setParent(ctx, 'leaf-2', 'gw-b', { force: true })
    assert.deepEqual(await listChildren(ctx, 'gw-b'), ['leaf-2'])
    await assert.rejects(setParent(ctx, 'leaf-3', 'leaf-1'), /"leaf-1" is not an IoT Edge device/)
    await assert.rejects(listChildren(ctx, 'leaf-1'), UsageError)
    await assert.rejects(removeChildren(ctx, 'gw-a', { childIds: ['leaf-2'] }), /"leaf-2" is not a child of edge device "gw-a"/)
    await assert.rejects(removeChildren(ctx, 'gw-a', {}), /--child-list <ids>, or --remove-all/)
    await removeChildren(ctx, 'gw-a', { all: true })
    assert.deepEqual(await listChildren(ctx, 'gw-a'), [])
    await assert.rejects(showParent(ctx, 'leaf-1'), /has no parent device/)
    await removeChildren(ctx, 'gw-b', { childIds: ['leaf-2'] })
    await assert.rejects(removeChildren(ctx, 'gw-b', { all: true }), /has no children/)
  })

  test('update --am: the authentication type changes and the old keys or thumbprints go; a switch to SAS takes both keys or neither', async () => {
    const { registry } = hub.context
    await hub.createDevice('switcher')
    const tp = 'CD'.repeat(20)
    const selfSigned = await registry.updateDevice('switcher', { authType: parseAuthType('x509_thumbprint'), primaryThumbprint: tp })
    assert.equal(selfSigned.authType, 'selfSigned')
    assert.equal(selfSigned.primaryThumbprint, tp)
    assert.equal(selfSigned.primaryKey, undefined, 'the SAS keys are dropped')
    await assert.rejects(registry.updateDevice('switcher', { authType: 'sas', primaryKey: Buffer.alloc(32, 1).toString('base64') }), /both --pk and --sk, or neither/)
    const sas = await registry.updateDevice('switcher', { authType: parseAuthType('shared_private_key') })
    assert.equal(sas.authType, 'sas')
    assert.equal(sas.primaryThumbprint, undefined, 'the thumbprint is dropped')
    assert.ok(sas.primaryKey && sas.secondaryKey && sas.primaryKey !== sas.secondaryKey, 'both keys are generated')
    const ca = await registry.updateDevice('switcher', { authType: parseAuthType('x509_ca') })
    assert.equal(ca.authType, 'certificateAuthority')
    assert.equal(ca.primaryKey, undefined)
    await assert.rejects(registry.updateDevice('switcher', { authType: 'selfSigned' }), /needs --primary-thumbprint/)
    assert.throws(() => parseAuthType('password'), /unknown auth type "password"/)
  })

  test('twin update --set: tags and properties.desired paths patch the twin after --desired (JSON values, null deletes, --force-string)', async () => {
    await hub.createDevice('twinned')
    await hub.updateTwin('twinned', { desired: { interval: 1, keep: 'me', nested: { a: 1 } }, tags: { site: 'old' } })
    const patch = twinSetPatch(['properties.desired.interval=5', 'properties.desired.nested.b=true', 'properties.desired.keep=null', 'tags.site=lab', 'tags.floor=3'], { desired: { unit: 'C' } })
    assert.deepEqual(patch, { desired: { unit: 'C', interval: 5, nested: { b: true }, keep: null }, tags: { site: 'lab', floor: 3 } })
    const twin = await hub.updateTwin('twinned', patch as TwinUpdate)
    const { $metadata: _m, $version: _v, ...desired } = twin.properties.desired as Record<string, unknown>
    assert.deepEqual(desired, { interval: 5, nested: { a: 1, b: true }, unit: 'C' }, 'merged as a PATCH: null deleted "keep", nested.a kept')
    assert.deepEqual(twin.tags, { site: 'lab', floor: 3 })
    assert.deepEqual(twinSetPatch(['tags.code=007', 'tags.on=true'], {}, { forceString: true }), { tags: { code: '007', on: 'true' } })
    assert.deepEqual(twinSetPatch(['properties.desired={"x": {"y": 1}}']), { desired: { x: { y: 1 } } })
    const proto = twinSetPatch(['tags.__proto__.polluted=1']).tags as Record<string, unknown>
    assert.ok(Object.prototype.hasOwnProperty.call(proto, '__proto__'), '__proto__ is a property name, not the prototype')
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.throws(() => twinSetPatch(['properties.reported.x=1']), /sets tags\[\.<name>…\] or properties\.desired/)
    assert.throws(() => twinSetPatch(['tags=3']), /must be a JSON object/)
    assert.throws(() => twinSetPatch(['tags..a=1']), /empty property name/)
  })

  test("-n / -l (--login): the local hub's name and its own connection string pass; another hub, a device string or a wrong key are refused", async () => {
    const { registry, hub: rec } = hub.context
    const own = registry.serviceConnectionString()
    checkHubTarget(rec, { name: rec.name, login: own })
    checkHubTarget(rec, { name: rec.hostName, login: registry.serviceConnectionString({ policy: 'service', keyType: 'secondary', gateway: 'localhost' }) })
    checkHubTarget(rec, {})
    assert.throws(() => checkHubTarget(rec, { name: 'elsewhere' }), /hub "elsewhere" is not the local hub/)
    assert.throws(() => checkHubTarget(rec, { login: own.replace(rec.hostName, 'other.azure-devices.net') }), /--login names hub "other\.azure-devices\.net"/)
    const device = await hub.deviceConnectionString('leaf-2')
    assert.throws(() => checkHubTarget(rec, { login: device }), /not a device's/)
    assert.throws(() => checkHubTarget(rec, { login: own.replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=' + Buffer.alloc(32).toString('base64')) }), UnauthorizedError)
    assert.throws(() => checkHubTarget(rec, { login: own.replace('iothubowner', 'nobody') }), /no shared access policy "nobody"/)
    assert.throws(() => checkHubTarget(rec, { login: 'just text' }), /not an IoT Hub connection string/)
  })

  test('hub connection-string show: iothubowner by default; --all lists every policy, with --eh only those with ServiceConnect', () => {
    const { registry, hub: rec } = hub.context
    assert.deepEqual(hubConnectionStrings(registry, rec.name), { connectionString: registry.serviceConnectionString({ policy: 'iothubowner' }) })
    const all = hubConnectionStrings(registry, rec.name, { all: true }).connectionString as string[]
    assert.deepEqual(
      all.map((cs) => /SharedAccessKeyName=([^;]+)/.exec(cs)?.[1]),
      rec.policies.map((p) => p.name),
    )
    const eh = hubConnectionStrings(registry, rec.name, { all: true, eventHub: true, keyType: 'secondary' }).connectionString as string[]
    const readers = rec.policies.filter((p) => p.rights.includes('ServiceConnect'))
    assert.ok(readers.length > 0 && readers.length < rec.policies.length, 'some policies cannot read events')
    assert.deepEqual(
      eh,
      readers.map((p) => `Endpoint=sb://localhost/;SharedAccessKeyName=${p.name};SharedAccessKey=${p.secondaryKey};EntityPath=${rec.name}`),
    )
  })

  test('delete --etag (devices and modules): a stale etag is refused with 412, the current one deletes', async () => {
    const d = await hub.createDevice('doomed')
    await assert.rejects(hub.context.registry.deleteDevice('doomed', { etag: 'stale' }), PreconditionFailedError)
    assert.ok(await hub.context.store.getDevice('doomed'))
    await hub.context.registry.deleteDevice('doomed', { etag: d.etag })
    assert.equal(await hub.context.store.getDevice('doomed'), undefined)
    // module-identity delete --etag, the same rule.
    const m = await hub.createModule('leaf-2', 'doomed-module')
    await assert.rejects(hub.context.registry.deleteModule('leaf-2', 'doomed-module', { etag: 'stale' }), PreconditionFailedError)
    await hub.context.registry.deleteModule('leaf-2', 'doomed-module', { etag: m.etag })
    assert.equal(await hub.context.store.getModule('leaf-2', 'doomed-module'), undefined)
  })
})

test('update --set: az generic update paths map onto the registry patch; unknown paths and bad values are refused', () => {
  assert.deepEqual(deviceSetPatch(['status=disabled', 'statusReason=maintenance window', 'capabilities.iotEdge=True']), { status: 'disabled', statusReason: 'maintenance window', edge: true })
  assert.deepEqual(deviceSetPatch(['authentication.symmetricKey.primaryKey=abc=']), { primaryKey: 'abc=' })
  assert.throws(() => deviceSetPatch(['tags.x=1']), /not a property edgemq can update/)
  assert.throws(() => deviceSetPatch(['status=paused']), /not enabled or disabled/)
  assert.throws(() => deviceSetPatch(['capabilities.iotEdge=yes']), /not true or false/)
  assert.throws(() => deviceSetPatch(['novalue']), /not path=value/)
  assert.deepEqual(moduleSetPatch(['managedBy=iotedge']), { managedBy: 'iotedge' })
  assert.throws(() => moduleSetPatch(['status=disabled']), /not a module property/)
  assert.deepEqual(mergeDefined({ status: 'disabled' as string | undefined, statusReason: 'x' }, { status: undefined, statusReason: 'y' }), { status: 'disabled', statusReason: 'y' })
})

test('three-state flags: --ee, --ee true, --ee false, --ee=False; other tokens untouched', () => {
  const flags = { edge: { type: 'boolean', aliases: ['ee', 'edge-enabled'], allowNo: true }, plain: { type: 'boolean' }, name: { type: 'option' } }
  assert.deepEqual(normalizeThreeState(['-d', 'x', '--ee', 'true'], flags), ['-d', 'x', '--edge'])
  assert.deepEqual(normalizeThreeState(['--ee', 'FALSE', '-d', 'x'], flags), ['--no-edge', '-d', 'x'])
  assert.deepEqual(normalizeThreeState(['--edge-enabled=false'], flags), ['--no-edge'])
  assert.deepEqual(normalizeThreeState(['--ee', '-d', 'x'], flags), ['--ee', '-d', 'x'])
  assert.deepEqual(normalizeThreeState(['--plain', 'false'], flags), [])
  assert.deepEqual(normalizeThreeState(['--name', 'true'], flags), ['--name', 'true'])
  assert.deepEqual(normalizeThreeState(['--', '--ee', 'true'], flags), ['--', '--ee', 'true'])
  assert.deepEqual(defaultBareValue(['--props', '-t', '5'], ['--props'], 'all'), ['--props', 'all', '-t', '5'])
  assert.deepEqual(defaultBareValue(['--props', 'sys', 'app'], ['--props'], 'all'), ['--props', 'sys', 'app'])
  assert.deepEqual(defaultBareValue(['-d', 'x', '--props'], ['--props'], 'all'), ['-d', 'x', '--props', 'all'])
})

test("monitor-events event shape: --props sys / app / anno / all and --ct, as az's common_parser builds it", () => {
  const ev: WireEvent = {
    deviceId: 'd1',
    moduleId: 'm1',
    properties: { alert: 'yes' },
    systemProperties: { messageId: 'mid-1', contentType: 'text/plain' },
    payload: Buffer.from('{"t": 1}').toString('base64'),
    enqueuedTime: '2026-01-01T00:00:00.000Z',
  }
  const bare = monitorView(ev)
  assert.deepEqual(bare, { event: { origin: 'd1', module: 'm1', interface: '', component: '', payload: '{"t": 1}' } }, 'text/plain: the payload stays text')
  assert.deepEqual(monitorView(ev, { contentType: 'application/json' }).event.payload, { t: 1 })
  const sys = monitorView(ev, { props: parseMonitorProps(['sys']) }).event
  assert.deepEqual(sys.properties, { system: { message_id: 'mid-1', content_type: 'text/plain', 'iothub-enqueuedtime': '2026-01-01T00:00:00.000Z' } })
  assert.equal('annotations' in sys, false)
  assert.deepEqual(monitorView(ev, { props: parseMonitorProps(['app']) }).event.properties, { application: { alert: 'yes' } })
  const anno = monitorView(ev, { props: parseMonitorProps(['anno']) }).event
  assert.deepEqual(anno.annotations, {
    'iothub-connection-device-id': 'd1',
    'iothub-connection-module-id': 'm1',
    'iothub-enqueuedtime': Date.parse('2026-01-01T00:00:00.000Z'),
    'iothub-message-source': 'Telemetry',
    'x-opt-enqueued-time': Date.parse('2026-01-01T00:00:00.000Z'),
  })
  const all = monitorView(ev, { props: parseMonitorProps(['ALL']) }).event
  assert.deepEqual(Object.keys(all), ['origin', 'module', 'interface', 'component', 'properties', 'annotations', 'payload'])
  assert.deepEqual(Object.keys(all.properties ?? {}), ['system', 'application'])
  assert.deepEqual(parseMonitorProps(['sys app', 'anno']), new Set(['sys', 'app', 'anno']))
  assert.throws(() => parseMonitorProps(['system']), /"system" is not one of sys, app, anno, all/)
  // No content type at all: JSON is still parsed (edgemq's leniency).
  assert.deepEqual(monitorView({ ...ev, systemProperties: {} }).event.payload, { t: 1 })
})

test('twin replace --json: tags and properties.desired without $metadata/$version; nothing to replace is refused', () => {
  assert.deepEqual(twinReplacement({ deviceId: 'x', etag: 'e', tags: { a: 1 }, properties: { desired: { b: 2, $metadata: {}, $version: 4 }, reported: { c: 3 } } }), { tags: { a: 1 }, desired: { b: 2 } })
  assert.deepEqual(twinReplacement({ properties: { desired: {} } }), { desired: {} })
  assert.throws(() => twinReplacement({ deviceId: 'x' }), /neither tags nor properties.desired/)
  assert.throws(() => twinReplacement([1]), /must be a twin object/)
})
