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
import { after, before, describe, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { openHub } from '../../src/config/home.js'
import { type BrokerProc, startBroker } from '../helpers/broker.js'
import { cliJson, REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'
import { rawDevice, rawProbe, setupHub, startMonitor } from '../helpers/raw-mqtt.js'

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

describe('monitor-events', () => {
  let broker: BrokerProc
  let device: MqttClient
  before(async () => {
    broker = await startBroker(home)
    device = await rawDevice(home, broker, 'q-1')
  })
  after(async () => {
    await device?.endAsync()
    await broker?.stop()
  })

  test('-p all (bare --props): system and application properties and annotations, as az prints them', async () => {
    const monitor = await startMonitor(home, ['-d', 'q-1', '--cg', '$Default', '-y'], rawProbe(device, 'q-1'))
    try {
      await device.publishAsync('devices/q-1/messages/events/color=blue', '{"t": 21}', { qos: 1 })
      const e = (await monitor.waitFor((x) => (x.event.payload as { t?: number }).t === 21)) as unknown as { event: Json & { properties: { application: Json; system: Json }; annotations: Json } }
      assert.deepEqual(e.event.properties.application, { color: 'blue' })
      assert.equal(e.event.annotations['iothub-connection-device-id'], 'q-1')
      assert.equal(typeof e.event.annotations['iothub-enqueuedtime'], 'number')
    } finally {
      await monitor.stop()
    }
  })

  test('hub query through the running broker sees live connectionState and lastActivityTime', async () => {
    const rows = await cliJson<Json[]>(home, ['hub', 'query', '-q', "SELECT deviceId, connectionState, lastActivityTime FROM devices WHERE connectionState = 'Connected'"])
    assert.deepEqual(
      rows.map(({ deviceId, connectionState }) => ({ deviceId, connectionState })),
      [{ deviceId: 'q-1', connectionState: 'Connected' }],
    )
    // q-1 subscribed and sent telemetry in the test above: a real time, not IoT Hub's "never".
    const at = Date.parse(String(rows[0].lastActivityTime))
    assert.ok(at > Date.now() - 10 * 60_000 && at <= Date.now(), String(rows[0].lastActivityTime))
    const idle = await cliJson<Json>(home, ['hub', 'device-twin', 'show', '-d', 'q-2'])
    assert.equal(idle.lastActivityTime, '0001-01-01T00:00:00Z')
  })

  test('send-d2c-message --dfp -p --key --dtmi and device simulate -p --irp --mrc --mrp (az flags)', async () => {
    const file = join(home, 'body.bin')
    writeFileSync(file, Buffer.from([0x01, 0x02, 0xff]))
    const ctx = await openHub({ home })
    const key = (await ctx.registry.getDevice('q-2')).primaryKey as string
    await ctx.close()
    const monitor = await startMonitor(home, ['-p', 'all'], rawProbe(device, 'q-1'))
    try {
      // --key signs with the given key (the device's own here), --dtmi announces a model: the event's interface.
      const sent = await runCli(['iot', 'device', 'send-d2c-message', '-d', 'q-2', '--dfp', file, '-p', 'kind=file', '--key', key, '--dtmi', 'dtmi:com:example:Probe;1'], { home })
      assert.equal(sent.code, 0, sent.stderr)
      const e = (await monitor.waitFor((x) => (x.event.properties as { application?: Json } | undefined)?.application?.kind === 'file')) as unknown as { event: Json }
      assert.equal(e.event.origin, 'q-2')
      assert.equal(e.event.interface, 'dtmi:com:example:Probe;1')
    } finally {
      await monitor.stop()
    }

    // The simulator answers methods with --mrc/--mrp while it runs (two messages 5 s apart) and reports --irp at start.
    const sim = runCli(['device', 'simulate', '-d', 'q-2', '--mc', '2', '--mi', '5', '--irp', '{"fw":"1.0"}', '--mrc', '202', '--mrp', '{"ok":true}', '-p', 'site=lab'], { home, timeoutMs: 60_000 })
    const deadline = Date.now() + 20_000
    for (;;) {
      const twin = await cliJson<{ properties: { reported: { fw?: string } } }>(home, ['twin', 'show', '-d', 'q-2'])
      if (twin.properties.reported.fw === '1.0') break
      assert.ok(Date.now() < deadline, 'the --irp reported properties arrive')
    }
    const answer = await cliJson<{ status: number; payload: unknown }>(home, ['method', 'invoke', '-d', 'q-2', '--method', 'ping', '--timeout', '10'])
    assert.deepEqual(answer, { status: 202, payload: { ok: true } })
    const done = await sim
    assert.equal(done.code, 0, done.stderr)
    const refused = await runCli(['device', 'simulate', '-d', 'q-2', '--rs', 'reject'], { home })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /--rs reject needs --proto http/)
  })

  test("-o table / tsv print each event as YAML, as az prints every output but json (PyYAML's sorted block style)", async () => {
    const marker = `yaml-${Date.now()}`
    const run = runCli(['hub', 'monitor-events', '-d', 'q-1', '-p', 'app', '--mc', '1', '-t', '30', '-o', 'tsv'], { home })
    let done = false
    void run.then(() => (done = true))
    // monitor prints no readiness line when piped: send until its one event (--mc 1) ends it, with a bound.
    for (let i = 0; i < 60 && !done; i++) {
      await device.publishAsync('devices/q-1/messages/events/color=blue', JSON.stringify({ probe: marker }), { qos: 1 })
      await Promise.race([run, new Promise((resolve) => setTimeout(resolve, 250))])
    }
    const r = await run
    assert.equal(r.code, 0, r.stderr)
    assert.equal(
      r.stdout,
      ['event:', "  component: ''", "  interface: ''", "  module: ''", '  origin: q-1', '  payload:', `    probe: ${marker}`, '  properties:', '    application:', '      color: blue', '', ''].join('\n'),
    )
  })

  test('-t is an idle timeout: no events → exits 0 after it; with --mc not reached → exit 4', async () => {
    const started = Date.now()
    const idle = await runCli(['hub', 'monitor-events', '-d', 'nobody', '-p', 'sys', 'app', '-t', '1', '--et', String(Date.now())], { home })
    assert.equal(idle.code, 0, idle.stderr)
    assert.ok(Date.now() - started >= 1000)
    const short = await runCli(['hub', 'monitor-events', '-d', 'nobody', '-t', '1', '--mc', '1'], { home })
    assert.equal(short.code, 4)
    assert.match(short.stderr, /got 0 of 1 events; none came for 1 s/)
    const badProps = await runCli(['hub', 'monitor-events', '-p', 'everything', '-t', '1'], { home })
    assert.notEqual(badProps.code, 0)
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
