/**
 * The IoT Hub query language (issue 17): the parser and evaluator over fixed twin documents
 * (vectors from Microsoft's "IoT Hub query language" and "Queries for device and module twins"
 * docs), then over a real in-process hub's twins, with paging and continuation tokens.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { QueryParseError, UsageError } from '../../src/errors.js'
import { executeQuery, parseQuery, type QueryDocument } from '../../src/query/index.js'

/** The doc's example twin (myDeviceId), two more devices, and module twins. */
const DEVICES: QueryDocument[] = [
  {
    deviceId: 'myDeviceId',
    status: 'enabled',
    lastActivityTime: '2024-01-02T00:00:00Z',
    capabilities: { iotEdge: false },
    version: 2,
    tags: { location: { region: 'US', plant: 'Redmond43' } },
    properties: {
      desired: { telemetryConfig: { configId: 'db00ebf5', sendFrequencyInSecs: 300 }, $version: 4 },
      reported: { connectivity: { type: 'cellular' }, telemetryConfig: { sendFrequencyInSecs: 300, status: 'Success' }, $version: 7 },
    },
  },
  {
    deviceId: 'sensor-2',
    status: 'disabled',
    capabilities: { iotEdge: false },
    version: 5,
    tags: { location: { region: 'EU', plant: 'Dublin' }, floors: [1, 2] },
    properties: { desired: { $version: 1 }, reported: { connectivity: 'wifi', telemetryConfig: { sendFrequencyInSecs: 60, status: 'Pending' }, temp: null, $version: 3 } },
  },
  {
    deviceId: 'edge-1',
    status: 'enabled',
    capabilities: { iotEdge: true },
    version: 1,
    properties: { desired: { $version: 1 }, reported: { connectivity: 'wired', telemetryConfig: { status: 'Success' }, $version: 1 } },
  },
]

function ids(sql: string, docs: QueryDocument[] = DEVICES): string[] {
  return executeQuery(parseQuery(sql), docs).map((d) => String(d.deviceId))
}

const WHERE_VECTORS: [string, string[]][] = [
  // From the IoT Hub docs.
  ["SELECT * FROM devices WHERE deviceId = 'myDeviceId'", ['myDeviceId']],
  ["SELECT * FROM devices WHERE tags.location.region = 'US'", ['myDeviceId']],
  ["SELECT * FROM devices WHERE tags.location.region = 'US' AND properties.reported.telemetryConfig.sendFrequencyInSecs >= 60", ['myDeviceId']],
  ["SELECT * FROM devices WHERE properties.reported.connectivity IN ['wired', 'wifi']", ['sensor-2', 'edge-1']],
  ['SELECT * FROM devices WHERE is_defined(properties.reported.connectivity)', ['myDeviceId', 'sensor-2', 'edge-1']],
  ["SELECT * FROM devices WHERE properties.reported.connectivity.type = 'cellular'", ['myDeviceId']],
  ['SELECT * FROM devices WHERE capabilities.iotEdge = true', ['edge-1']],
  ["SELECT * FROM devices WHERE tags.location.region = 'US' AND properties.reported.telemetryConfig.status = 'Pending'", []],
  // Operators and logic.
  ["SELECT * FROM devices WHERE status != 'enabled'", ['sensor-2']],
  ["SELECT * FROM devices WHERE status <> 'enabled'", ['sensor-2']],
  ['SELECT * FROM devices WHERE version > 1 AND version < 5', ['myDeviceId']],
  ['SELECT * FROM devices WHERE version <= 2', ['myDeviceId', 'edge-1']],
  ['SELECT * FROM devices WHERE version = 1 OR version = 5', ['sensor-2', 'edge-1']],
  ["SELECT * FROM devices WHERE NOT (status = 'enabled')", ['sensor-2']],
  ["SELECT * FROM devices WHERE NOT status = 'enabled' OR capabilities.iotEdge = true", ['sensor-2', 'edge-1']],
  ["SELECT * FROM devices WHERE (status = 'enabled' OR version = 5) AND NOT capabilities.iotEdge", ['myDeviceId', 'sensor-2']],
  ["SELECT * FROM devices WHERE deviceId NIN ['edge-1', 'sensor-2']", ['myDeviceId']],
  ["SELECT * FROM devices WHERE deviceId NOT IN ['edge-1']", ['myDeviceId', 'sensor-2']],
  ['SELECT * FROM devices WHERE version IN [1, 2]', ['myDeviceId', 'edge-1']],
  // Missing properties and type mismatches are undefined: never true, not even with != or NOT.
  ["SELECT * FROM devices WHERE tags.location.region != 'US'", ['sensor-2']],
  ["SELECT * FROM devices WHERE NOT (tags.location.region = 'US')", ['sensor-2']],
  ["SELECT * FROM devices WHERE version = '2'", []],
  ['SELECT * FROM devices WHERE NOT IS_DEFINED(tags)', ['edge-1']],
  ['SELECT * FROM devices WHERE IS_NULL(properties.reported.temp)', ['sensor-2']],
  ['SELECT * FROM devices WHERE IS_STRING(properties.reported.connectivity)', ['sensor-2', 'edge-1']],
  ['SELECT * FROM devices WHERE IS_OBJECT(properties.reported.connectivity)', ['myDeviceId']],
  ['SELECT * FROM devices WHERE IS_NUMBER(properties.reported.telemetryConfig.sendFrequencyInSecs)', ['myDeviceId', 'sensor-2']],
  ['SELECT * FROM devices WHERE IS_BOOL(capabilities.iotEdge) AND IS_ARRAY(tags.floors)', ['sensor-2']],
  ['SELECT * FROM devices WHERE tags.floors = [1, 2]', ['sensor-2']],
  ['SELECT * FROM devices WHERE tags.floors[1] = 2', ['sensor-2']],
  ["SELECT * FROM devices WHERE tags['location'].plant = 'Dublin'", ['sensor-2']],
  ['SELECT * FROM devices WHERE properties.reported.$version > 2', ['myDeviceId', 'sensor-2']],
  ['SELECT * FROM devices WHERE properties.desired.telemetryConfig.sendFrequencyInSecs / 60 = 5', ['myDeviceId']],
  ['SELECT * FROM devices WHERE version % 2 = 1 AND -version < 0', ['sensor-2', 'edge-1']],
  // Strings: STARTSWITH/ENDSWITH, both quotes, escapes, ordinal comparison.
  ["SELECT * FROM devices WHERE STARTSWITH(deviceId, 'sensor')", ['sensor-2']],
  ['SELECT * FROM devices WHERE ENDSWITH(deviceId, "-1")', ['edge-1']],
  ["SELECT * FROM devices WHERE deviceId > 'f'", ['myDeviceId', 'sensor-2']],
  ["SELECT * FROM devices WHERE lastActivityTime > '2024-01-01'", ['myDeviceId']],
  ["SELECT * FROM devices WHERE tags.location.plant = 'Dub''lin' OR tags.location.plant = 'Dub\\'lin'", []],
  // Keywords and functions are case-insensitive; the twin's own top-level names too (the docs write LastActivityTime).
  ["select * from DEVICES where Status = 'enabled' and not capabilities.iotEdge", ['myDeviceId']],
  ["SELECT * FROM devices WHERE LastActivityTime = '2024-01-02T00:00:00Z'", ['myDeviceId']],
  ['SELECT * FROM devices WHERE startsWith(deviceId, "edge") = true', ['edge-1']],
  ['SELECT * FROM devices WHERE true', ['myDeviceId', 'sensor-2', 'edge-1']],
  ['SELECT * FROM devices WHERE null = null', ['myDeviceId', 'sensor-2', 'edge-1']],
]

for (const [sql, want] of WHERE_VECTORS) {
  test(`WHERE: ${sql}`, () => assert.deepEqual(ids(sql), want))
}

test('nesting up to the limit parses: 60 parentheses, NOT NOT … true', () => {
  assert.deepEqual(ids(`SELECT * FROM devices WHERE ${'('.repeat(60)}capabilities.iotEdge = true${')'.repeat(60)}`), ['edge-1'])
  assert.deepEqual(ids(`SELECT * FROM devices WHERE ${'NOT '.repeat(10)}capabilities.iotEdge`), ['edge-1'])
})

test('SELECT * returns whole twins, in order; TOP limits', () => {
  const all = executeQuery(parseQuery('SELECT * FROM devices'), DEVICES)
  assert.deepEqual(all, DEVICES)
  assert.deepEqual(ids('SELECT TOP 2 * FROM devices'), ['myDeviceId', 'sensor-2'])
})

test('projections: paths (named by their last segment), aliases, missing values left out', () => {
  assert.deepEqual(executeQuery(parseQuery('SELECT deviceId, tags.location.region FROM devices'), DEVICES), [
    { deviceId: 'myDeviceId', region: 'US' },
    { deviceId: 'sensor-2', region: 'EU' },
    { deviceId: 'edge-1' },
  ])
  assert.deepEqual(executeQuery(parseQuery("SELECT deviceId AS id, properties.reported.telemetryConfig AS cfg FROM devices WHERE deviceId = 'edge-1'"), DEVICES), [
    { id: 'edge-1', cfg: { status: 'Success' } },
  ])
  assert.deepEqual(executeQuery(parseQuery("SELECT LastActivityTime FROM devices WHERE status = 'enabled'"), DEVICES), [{ LastActivityTime: '2024-01-02T00:00:00Z' }, {}])
})

test('aggregates: COUNT() AS, GROUP BY (the docs example), SUM/AVG/MIN/MAX', () => {
  assert.deepEqual(executeQuery(parseQuery('SELECT COUNT() AS numberOfDevices FROM devices'), DEVICES), [{ numberOfDevices: 3 }])
  assert.deepEqual(executeQuery(parseQuery("SELECT COUNT() AS n FROM devices WHERE status = 'nope'"), DEVICES), [{ n: 0 }])
  assert.deepEqual(
    executeQuery(
      parseQuery('SELECT properties.reported.telemetryConfig.status AS status, COUNT() AS numberOfDevices FROM devices GROUP BY properties.reported.telemetryConfig.status'),
      DEVICES,
    ),
    [
      { status: 'Success', numberOfDevices: 2 },
      { status: 'Pending', numberOfDevices: 1 },
    ],
  )
  assert.deepEqual(executeQuery(parseQuery('SELECT COUNT() AS n, SUM(version) AS s, AVG(version) AS a, MIN(version) AS lo, MAX(version) AS hi FROM devices GROUP BY status'), DEVICES), [
    { n: 2, s: 3, a: 1.5, lo: 1, hi: 2 },
    { n: 1, s: 5, a: 5, lo: 5, hi: 5 },
  ])
  // Without an alias an aggregate is named by its place in the list.
  assert.deepEqual(executeQuery(parseQuery('SELECT COUNT() FROM devices'), DEVICES), [{ $1: 3 }])
})

test('devices.modules: module twins, WHERE on moduleId and deviceId (docs example)', () => {
  const modules: QueryDocument[] = [
    { deviceId: 'device1', moduleId: 'scanner', properties: { reported: { status: 'scanning' } } },
    { deviceId: 'device2', moduleId: 'scanner', properties: { reported: { status: 'idle' } } },
    { deviceId: 'device3', moduleId: 'scanner', properties: { reported: { status: 'scanning' } } },
  ]
  const q = parseQuery("SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning' AND deviceId IN ['device1', 'device2']")
  assert.equal(q.from, 'devices.modules')
  assert.deepEqual(ids("SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning' AND deviceId IN ['device1', 'device2']", modules), ['device1'])
})

const BAD: [string, RegExp, number][] = [
  ['SELEC * FROM devices', /expected SELECT at position 1, found 'SELEC'/, 1],
  ['SELECT * FRM devices', /expected FROM at position 10/, 10],
  ['SELECT * FROM things', /'devices' or 'devices.modules' after FROM at position 15/, 15],
  ["SELECT * FROM devices WHERE tags.site = 'a", /unterminated string starting at position 41/, 41],
  ['SELECT * FROM devices WHERE', /expected a value, property or function at position 28, found the end of the query/, 28],
  ['SELECT * FROM devices WHERE (status = 1', /expected '\)' at position 40/, 40],
  ['SELECT * FROM devices WHERE status = 1 extra', /expected WHERE, GROUP BY or the end of the query at position 40/, 40],
  ['SELECT * FROM devices WHERE NOPE(status)', /unknown function NOPE\(\) at position 29/, 29],
  ['SELECT * FROM devices WHERE COUNT() > 1', /aggregate COUNT\(\) at position 29 is only allowed as a SELECT item/, 29],
  ['SELECT * FROM devices WHERE deviceId IN "a"', /a list '\[…\]' after IN at position 41/, 41],
  ['SELECT * FROM devices WHERE status # 1', /unexpected character '#' at position 36/, 36],
  ['SELECT TOP x * FROM devices', /a whole number after TOP at position 12/, 12],
  ['SELECT * FROM devices.jobs', /devices\.jobs .* not supported/, 15],
  ['SELECT deviceId, COUNT() AS n FROM devices GROUP BY status', /'deviceId' in SELECT is neither an aggregate nor in GROUP BY/, 1],
  ['SELECT * FROM devices GROUP BY status', /SELECT \* cannot be used with GROUP BY/, 1],
  ['SELECT * FROM devices WHERE STARTSWITH(deviceId)', /STARTSWITH\(\) at position 29 takes 2 argument/, 29],
  ['   ', /the query is empty/, 1],
  [`SELECT * FROM devices WHERE ${'('.repeat(100)}true${')'.repeat(100)}`, /nests deeper than 64 levels at position 93/, 93],
  [`SELECT * FROM devices WHERE ${'NOT '.repeat(100)}true`, /nests deeper than 64 levels at position 285/, 285],
]

for (const [sql, message, position] of BAD) {
  test(`parse error: ${JSON.stringify(sql)}`, () => {
    assert.throws(
      () => parseQuery(sql),
      (err: unknown) => {
        assert.ok(err instanceof QueryParseError, `QueryParseError, got ${String(err)}`)
        assert.match(err.message, message)
        assert.equal(err.position, position)
        assert.equal(err.exitCode, 2)
        return true
      },
    )
  })
}

describeHub()

function describeHub() {
  let hub: Hub
  before(async () => {
    hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: null } })
    for (let i = 0; i < 7; i++) await hub.createDevice(`q-${i}`)
    await hub.createDevice('q-edge', { edge: true })
    await hub.updateTwin('q-1', { tags: { site: 'a' } })
    await hub.updateTwin('q-2', { tags: { site: 'a' }, desired: { interval: 5 } })
    await hub.updateTwin('q-3', { tags: { site: 'b' } })
    await hub.createModule('q-1', 'filter')
  })
  after(() => hub?.close())

  test('hub.query: WHERE on tags over real twins, with the IoT Hub twin fields', async () => {
    const rows = await hub.query("SELECT * FROM devices WHERE tags.site = 'a'")
    assert.deepEqual(
      rows.map((r) => r.deviceId),
      ['q-1', 'q-2'],
    )
    const twin = rows[1] as Record<string, unknown>
    assert.equal(twin.etag, (await hub.getTwin('q-2')).etag)
    for (const k of ['deviceEtag', 'status', 'statusUpdateTime', 'connectionState', 'lastActivityTime', 'cloudToDeviceMessageCount', 'authenticationType', 'x509Thumbprint', 'modelId', 'version', 'capabilities', 'deviceScope', 'parentScopes', 'properties']) {
      assert.ok(k in twin, `twin has ${k}`)
    }
    const desired = (twin.properties as { desired: Record<string, unknown> }).desired
    assert.equal(desired.interval, 5)
    assert.equal(desired.$version, 2)
    assert.equal((desired.$metadata as Record<string, { $lastUpdatedVersion?: number }>).interval.$lastUpdatedVersion, 2)
    // $metadata is queryable like any property.
    assert.deepEqual(
      (await hub.query('SELECT deviceId FROM devices WHERE IS_DEFINED(properties.desired.$metadata.interval)')).map((r) => r.deviceId),
      ['q-2'],
    )
    // q-edge and the hub's own edge device.
    assert.deepEqual(await hub.query('SELECT COUNT() AS n FROM devices WHERE capabilities.iotEdge = true'), [{ n: 2 }])
    assert.deepEqual(await hub.query('SELECT tags.site AS site, COUNT() AS n FROM devices WHERE IS_DEFINED(tags.site) GROUP BY tags.site'), [
      { site: 'a', n: 2 },
      { site: 'b', n: 1 },
    ])
  })

  test('hub.query over devices.modules: the edge runtime modules and a custom one', async () => {
    const rows = await hub.query("SELECT deviceId, moduleId FROM devices.modules WHERE deviceId != '" + hub.edgeDeviceId + "'")
    assert.deepEqual(rows, [
      { deviceId: 'q-1', moduleId: 'filter' },
      { deviceId: 'q-edge', moduleId: '$edgeAgent' },
      { deviceId: 'q-edge', moduleId: '$edgeHub' },
    ])
    assert.deepEqual(await hub.query("SELECT * FROM devices.modules WHERE moduleId = 'filter'").then((r) => r.map((x) => x.deviceId)), ['q-1'])
  })

  test('queryPage: pages of x-ms-max-item-count with an opaque continuation token; none on the last page', async () => {
    const all = (await hub.query("SELECT deviceId FROM devices WHERE STARTSWITH(deviceId, 'q-')")).map((r) => r.deviceId)
    assert.equal(all.length, 8)
    const seen: unknown[] = []
    let token: string | undefined
    let pages = 0
    do {
      const page = await hub.queryPage("SELECT deviceId FROM devices WHERE STARTSWITH(deviceId, 'q-')", { pageSize: 3, continuationToken: token })
      assert.equal(page.itemType, 'Raw')
      assert.ok(page.items.length <= 3)
      seen.push(...page.items.map((r) => r.deviceId))
      token = page.continuationToken
      pages++
    } while (token)
    assert.equal(pages, 3)
    assert.deepEqual(seen, all)
    assert.equal((await hub.queryPage('SELECT * FROM devices')).itemType, 'Twin')
    const everyDevice = await hub.query('SELECT deviceId FROM devices')
    assert.equal(everyDevice.length, 9)
    assert.deepEqual(await hub.query('SELECT deviceId FROM devices', { top: 2 }), everyDevice.slice(0, 2))
  })

  test("cloudToDeviceMessageCount is the device's C2D queue depth, in twins and in queries", async () => {
    assert.equal((await hub.getTwin('q-5')).cloudToDeviceMessageCount, 0)
    await hub.sendC2d('q-5', 'one')
    await hub.sendC2d('q-5', 'two')
    assert.equal((await hub.getTwin('q-5')).cloudToDeviceMessageCount, 2)
    assert.deepEqual(await hub.query('SELECT deviceId, cloudToDeviceMessageCount FROM devices WHERE cloudToDeviceMessageCount > 0'), [{ deviceId: 'q-5', cloudToDeviceMessageCount: 2 }])
  })

  test('a continuation token of another query, or garbage, is refused', async () => {
    const first = await hub.queryPage('SELECT * FROM devices', { pageSize: 1 })
    assert.ok(first.continuationToken)
    await assert.rejects(hub.queryPage("SELECT * FROM devices WHERE status = 'enabled'", { pageSize: 1, continuationToken: first.continuationToken }), UsageError)
    await assert.rejects(hub.queryPage('SELECT * FROM devices', { continuationToken: 'not-a-token' }), /continuation token is not one this hub issued/)
    await assert.rejects(hub.queryPage('SELECT * FROM devices', { pageSize: 0 }), /page size/)
  })
}
