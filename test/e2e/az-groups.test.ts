/**
 * Issue 17: the az groups and flags that were missing, run as a script would run them (the real
 * binary, one home): `hub query`, `device-identity list` as twins, `create --am x509_thumbprint
 * --ptp --stp` / `--vd --od` / `--am x509_ca` / `--ee true`, `update --set`, `delete --etag`,
 * `children add/list/remove`, `parent show/set`, `renew-key`, `module-identity update/renew-key`,
 * `device-twin replace` / `module-twin replace`, and `monitor-events -p … -t … --cg -y` (and YAML for -o table/tsv); `hub query`
 * also through a running broker (live connectionState).
 * The logic behind each is tested through the library in test/unit/az-identity-ops.test.ts and query.test.ts.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'

import { cliJson, REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'
import { setupHub } from '../helpers/raw-mqtt.js'

type Json = Record<string, unknown>
type DeviceJson = { deviceId: string; etag: string; status: string; capabilities: { iotEdge: boolean }; authentication: { type: string; symmetricKey: { primaryKey: string | null; secondaryKey: string | null }; x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null } } }

const home = tempHome()
const TP1 = 'A1'.repeat(20)
const TP2 = 'B2'.repeat(20)

before(() => setupHub(home, ['q-1', 'q-2', 'leaf', 'leaf/mod']))

describe('no broker', () => {
  test('hub query: JSON array, WHERE on tags, --top, GROUP BY; a bad query exits 2 with the position', async () => {
    await cliJson(home, ['hub', 'device-twin', 'update', '-d', 'q-1', '--tags', '{"site": "a"}'])
    await cliJson(home, ['hub', 'device-twin', 'update', '-d', 'q-2', '--tags', '{"site": "a"}'])
    const rows = await cliJson<Json[]>(home, ['hub', 'query', '-q', "SELECT * FROM devices WHERE tags.site = 'a'"])
    assert.deepEqual(
      rows.map((r) => r.deviceId),
      ['q-1', 'q-2'],
    )
    assert.deepEqual(await cliJson(home, ['hub', 'query', '--query-command', "select deviceId from devices where tags.site = 'a'", '--top', '1']), [{ deviceId: 'q-1' }])
    assert.deepEqual(await cliJson(home, ['hub', 'query', '-q', 'SELECT tags.site AS site, COUNT() AS n FROM devices WHERE IS_DEFINED(tags.site) GROUP BY tags.site']), [{ site: 'a', n: 2 }])
    assert.deepEqual(await cliJson(home, ['hub', 'query', '-q', "SELECT deviceId, moduleId FROM devices.modules WHERE deviceId = 'leaf'"]), [{ deviceId: 'leaf', moduleId: 'mod' }])
    const bad = await runCli(['hub', 'query', '-q', 'SELECT * FROM devices WHERE tags.site = '], { home })
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(bad.stderr, /query parse error: expected a value, property or function at position 41, found the end of the query/)
  })

  test('device-identity list prints twins (no keys), as az; --ee filters edge devices', async () => {
    const list = await cliJson<Json[]>(home, ['hub', 'device-identity', 'list'])
    const q1 = list.find((d) => d.deviceId === 'q-1') as Json
    assert.equal('authentication' in q1, false, 'no keys in the list')
    for (const k of ['deviceEtag', 'statusReason', 'statusUpdateTime', 'lastActivityTime', 'cloudToDeviceMessageCount', 'x509Thumbprint', 'modelId', 'deviceScope', 'parentScopes', 'capabilities', 'version']) assert.ok(k in q1, k)
    assert.deepEqual(q1.tags, { site: 'a' })
    const desired = (q1.properties as { desired: Json }).desired
    assert.deepEqual(Object.keys(desired), ['$metadata', '$version'])
    // The list replays into another home: tags and desired come along; SAS devices get new keys, with a warning.
    const file = join(home, 'list.json')
    writeFileSync(file, JSON.stringify(list))
    const other = tempHome()
    const imported = await runCli(['hub', 'import', file], { home: other })
    assert.equal(imported.code, 0, imported.stderr)
    assert.match(imported.stderr, /warning: device "q-1": the input has no keys, so it got new ones/)
    assert.equal((JSON.parse(imported.stdout) as { warnings: string[] }).warnings.length, 3) // q-1, q-2, leaf (edge-gateway exists there: updated, keys kept)
    assert.deepEqual((await cliJson<Json>(other, ['twin', 'show', '-d', 'q-1'])).tags, { site: 'a' })
    // az's hub identifier flags: -g and --auth-type are accepted; -l must be this hub's connection string.
    const edge = await cliJson<Json[]>(home, ['hub', 'device-identity', 'list', '--ee', '-n', 'edgemq', '-g', 'my-rg', '--auth-type', 'key'])
    assert.deepEqual(
      edge.map((d) => d.deviceId),
      ['edge-gateway'],
    )
    const foreign = await runCli(['hub', 'device-identity', 'list', '-l', 'HostName=prod.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=AAAA'], { home })
    assert.equal(foreign.code, 1)
    assert.match(foreign.stderr, /error: --login names hub "prod\.azure-devices\.net"; this home holds hub "edgemq"/)
  })

  test('create --am x509_thumbprint --ptp --stp; --am x509_ca; --vd/--od make and register a self-signed certificate', async () => {
    const cam = await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'create', '-d', 'cam', '--am', 'x509_thumbprint', '--ptp', TP1, '--stp', TP2])
    assert.equal(cam.authentication.type, 'selfSigned')
    assert.deepEqual(cam.authentication.x509Thumbprint, { primaryThumbprint: TP1, secondaryThumbprint: TP2 })
    const ca = await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'create', '-d', 'cam-ca', '--am', 'x509_ca'])
    assert.equal(ca.authentication.type, 'certificateAuthority')
    const out = join(home, 'out')
    mkdirSync(out)
    const r = await runCli(['hub', 'device-identity', 'create', '-d', 'cam2', '--am', 'x509_thumbprint', '--vd', '30', '--od', out], { home })
    assert.equal(r.code, 0, r.stderr)
    const cam2 = JSON.parse(r.stdout) as DeviceJson
    assert.match(cam2.authentication.x509Thumbprint.primaryThumbprint ?? '', /^[0-9A-F]{64}$/)
    assert.ok(existsSync(join(out, 'cam2.cert.pem')) && existsSync(join(out, 'cam2.key.pem')))
    const missing = await runCli(['hub', 'device-identity', 'create', '-d', 'cam3', '--am', 'x509_thumbprint', '--vd', '30', '--od', join(home, 'nope')], { home })
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /certificate output directory ".*nope" does not exist/)
    const sasVd = await runCli(['hub', 'device-identity', 'create', '-d', 'cam4', '--vd', '30'], { home })
    assert.equal(sasVd.code, 1)
    assert.match(sasVd.stderr, /need --am x509_thumbprint/)
  })

  test('--ee true / --ee false, update --set, delete --etag', async () => {
    const gw = await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'create', '-d', 'gw2', '--ee', 'true'])
    assert.equal(gw.capabilities.iotEdge, true)
    const plain = await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'create', '-d', 'plain', '--ee', 'false'])
    assert.equal(plain.capabilities.iotEdge, false)
    const set = await cliJson<DeviceJson & { statusReason: string }>(home, ['hub', 'device-identity', 'update', '-d', 'plain', '--set', 'status=disabled', 'statusReason=maintenance'])
    assert.equal(set.status, 'disabled')
    assert.equal(set.statusReason, 'maintenance')
    const badSet = await runCli(['hub', 'device-identity', 'update', '-d', 'plain', '--set', 'tags.x=1'], { home })
    assert.equal(badSet.code, 1)
    assert.match(badSet.stderr, /--set tags\.x: not a property edgemq can update/)
    const stale = await runCli(['hub', 'device-identity', 'delete', '-d', 'plain', '--etag', 'stale'], { home })
    assert.equal(stale.code, 1)
    assert.match(stale.stderr, /etag "stale" does not match/)
    await cliJson(home, ['hub', 'device-identity', 'delete', '-d', 'plain', '--etag', set.etag])
    assert.equal((await runCli(['device', 'show', 'plain'], { home })).code, 1)
  })

  test('children add / list / remove and parent show / set', async () => {
    assert.deepEqual(await cliJson(home, ['hub', 'device-identity', 'children', 'add', '-d', 'gw2', '--cl', 'q-1', 'q-2']), ['q-1', 'q-2'])
    assert.deepEqual(await cliJson(home, ['hub', 'device-identity', 'children', 'list', '-d', 'gw2']), ['q-1', 'q-2'])
    assert.equal((await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'parent', 'show', '-d', 'q-1'])).deviceId, 'gw2')
    const taken = await runCli(['hub', 'device-identity', 'parent', 'set', '-d', 'q-1', '--pd', 'edge-gateway'], { home })
    assert.equal(taken.code, 1)
    assert.match(taken.stderr, /already has parent "gw2"[\s\S]*--force/)
    assert.equal((await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'parent', 'set', '-d', 'q-1', '--pd', 'edge-gateway', '--force'])).deviceId, 'edge-gateway')
    assert.deepEqual(await cliJson(home, ['hub', 'device-identity', 'children', 'remove', '-d', 'gw2', '--remove-all']), [])
  })

  test('renew-key --kt swap / primary; module-identity update --set and renew-key', async () => {
    const before = await cliJson<DeviceJson>(home, ['device', 'show', 'leaf'])
    const swapped = await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'renew-key', '-d', 'leaf', '--kt', 'swap'])
    assert.equal(swapped.authentication.symmetricKey.primaryKey, before.authentication.symmetricKey.secondaryKey)
    const renewed = await cliJson<DeviceJson>(home, ['hub', 'device-identity', 'renew-key', '-d', 'leaf', '--kt', 'primary'])
    assert.notEqual(renewed.authentication.symmetricKey.primaryKey, swapped.authentication.symmetricKey.primaryKey)
    const key = Buffer.alloc(32, 7).toString('base64')
    const mod = await cliJson<DeviceJson>(home, ['hub', 'module-identity', 'update', '-d', 'leaf', '-m', 'mod', '--set', `authentication.symmetricKey.primaryKey=${key}`])
    assert.equal(mod.authentication.symmetricKey.primaryKey, key)
    const modRenewed = await cliJson<DeviceJson>(home, ['hub', 'module-identity', 'renew-key', '-d', 'leaf', '-m', 'mod', '--kt', 'primary'])
    assert.notEqual(modRenewed.authentication.symmetricKey.primaryKey, key)
    const noKt = await runCli(['hub', 'device-identity', 'renew-key', '-d', 'leaf'], { home })
    assert.notEqual(noKt.code, 0)
  })

  test('device-twin replace --json file (an edited twin show) and module-twin replace -j JSON', async () => {
    const shown = await cliJson<Json & { properties: { desired: Json } }>(home, ['hub', 'device-twin', 'show', '-d', 'q-2'])
    const file = join(home, 'twin.json')
    writeFileSync(file, JSON.stringify({ ...shown, tags: { floor: 3 }, properties: { ...shown.properties, desired: { ...shown.properties.desired, mode: 'eco' } } }))
    const replaced = await cliJson<Json & { tags: Json; properties: { desired: Json } }>(home, ['hub', 'device-twin', 'replace', '-d', 'q-2', '--json', file])
    assert.deepEqual(replaced.tags, { floor: 3 }, 'site: a is gone: replaced, not merged')
    assert.equal(replaced.properties.desired.mode, 'eco')
    const mod = await cliJson<{ properties: { desired: Json } }>(home, ['hub', 'module-twin', 'replace', '-d', 'leaf', '-m', 'mod', '-j', '{"properties": {"desired": {"threshold": 30}}}'])
    assert.equal(mod.properties.desired.threshold, 30)
    const stale = await runCli(['hub', 'device-twin', 'replace', '-d', 'q-2', '-j', '{"tags": {}}', '--etag', 'AAAAAAAAAAE='], { home })
    assert.equal(stale.code, 1)
  })
})

describe('az iot edge deployment', () => {
  test('create (with a target condition and priority) / list / show / delete, az JSON shapes and exit codes', async () => {
    const manifest = join(REPO_ROOT, 'examples', 'deployment.json')
    type Created = { id: string; priority: number; etag: string; labels: Record<string, string>; metrics: { queries: Record<string, string> }; systemMetrics: { results: { targetedCount: number; appliedCount: number } } }
    const created = await cliJson<Created>(home, [
      'edge', 'deployment', 'create', '-d', 'lab', '-k', manifest, '-t', 'capabilities.iotEdge = true', '--pri', '3', '-o', 'json',
      '--cl', 'ring=canary', 'site="lab 1"', '--cmq', "ok=SELECT deviceId FROM devices WHERE tags.ok = true", '--no-validation',
    ])
    assert.equal(created.id, 'lab')
    assert.equal(created.priority, 3)
    assert.deepEqual(created.labels, { ring: 'canary', site: 'lab 1' })
    assert.deepEqual(created.metrics.queries, { ok: 'SELECT deviceId FROM devices WHERE tags.ok = true' })
    const { targetedCount, appliedCount } = created.systemMetrics.results
    assert.ok(targetedCount >= 1 && appliedCount === targetedCount, JSON.stringify(created.systemMetrics))
    const list = await cliJson<{ id: string }[]>(home, ['edge', 'deployment', 'list', '-o', 'json'])
    assert.deepEqual(list.map((d) => d.id), ['lab'])
    const bad = await runCli(['edge', 'deployment', 'create', '-d', 'x', '-k', manifest, '-t', 'tags.a = = 1'], { home })
    assert.equal(bad.code, 2, bad.stderr)
    const stale = await runCli(['edge', 'deployment', 'delete', '-d', 'lab', '--etag', 'nope'], { home })
    assert.equal(stale.code, 1)
    assert.match(stale.stderr, /etag/)
    assert.equal((await runCli(['edge', 'deployment', 'delete', '-d', 'lab', '-e', created.etag], { home })).code, 0)
    const gone = await runCli(['edge', 'deployment', 'show', '-d', 'lab'], { home })
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /not found/)
  })
})
