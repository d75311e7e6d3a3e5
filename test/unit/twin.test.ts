import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvalidDocumentError } from '../../src/errors.js'
import {
  TWIN_LIMITS,
  TwinPreconditionError,
  TwinValidationError,
  applyDesiredPatch,
  applyReportedPatch,
  applyTagsPatch,
  createTwin,
  desiredPatchNotification,
  etagFor,
  jsonSize,
  keyProblem,
  mergePatch,
  parseTwinJson,
  serviceTwinJson,
  twinResponseBody,
  updateTwin,
  validateTwinPatch,
  type TwinObject,
} from '../../src/twin/index.js'

/**
 * `{ l1: { l2: { … { lN: { leaf: 'x' } } } } }`: N levels of objects below the root, the
 * shape of IoT Hub's own example (tags.one … .ten, the deepest allowed).
 */
function nested(levels: number): TwinObject {
  let v: TwinObject = { leaf: 'x' }
  for (let i = levels; i >= 1; i--) v = { [`l${i}`]: v }
  return v
}

function is400(pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TwinValidationError, `TwinValidationError, got ${String(err)}`)
    assert.ok(err instanceof InvalidDocumentError)
    assert.equal(err.status, 400)
    assert.match(err.message, pattern)
    return true
  }
}

// ---------------------------------------------------------------------------------------------
// Shapes and versions

test('createTwin: versions start at 1, etag like IoT Hub', () => {
  const t = createTwin({}, '2026-01-01T00:00:00.000Z')
  assert.deepEqual(t, {
    tags: {},
    desired: {},
    reported: {},
    desiredVersion: 1,
    reportedVersion: 1,
    version: 1,
    etag: 'AAAAAAAAAAE=',
    desiredMetadata: { $lastUpdated: '2026-01-01T00:00:00.000Z', $lastUpdatedVersion: 1 },
    reportedMetadata: { $lastUpdated: '2026-01-01T00:00:00.000Z' },
  })
  assert.equal(etagFor(2), 'AAAAAAAAAAI=')
})

test('twinResponseBody: what a device gets for $iothub/twin/GET', () => {
  let t = createTwin()
  t = applyDesiredPatch(t, { telemetryInterval: 5 })
  t = applyReportedPatch(t, { firmware: '1.0' })
  assert.deepEqual(twinResponseBody(t), {
    desired: { telemetryInterval: 5, $version: 2 },
    reported: { firmware: '1.0', $version: 2 },
  })
})

test('applyDesiredPatch / applyReportedPatch: merge, null deletes, $version per side', () => {
  const t0 = createTwin()
  const t1 = applyDesiredPatch(t0, { a: 1, nested: { x: 1, y: 2 }, list: [1, 2] })
  const t2 = applyDesiredPatch(t1, { a: null, nested: { y: null, z: 3 }, list: [3] })
  assert.deepEqual(t2.desired, { nested: { x: 1, z: 3 }, list: [3] })
  assert.equal(t2.desiredVersion, 3)
  assert.equal(t2.reportedVersion, 1, 'the other side is untouched')
  assert.equal(t2.version, 3)
  assert.equal(t2.etag, etagFor(3))
  assert.deepEqual(t0.desired, {}, 'pure: the input twin is not mutated')
  assert.deepEqual(t1.desired, { a: 1, nested: { x: 1, y: 2 }, list: [1, 2] })

  const t3 = applyReportedPatch(t2, { status: { ok: true } })
  const t4 = applyReportedPatch(t3, { status: { ok: null, code: 0 } })
  assert.deepEqual(t4.reported, { status: { code: 0 } })
  assert.equal(t4.reportedVersion, 3)
  assert.equal(t4.desiredVersion, 3)
  assert.equal(t4.version, 5)
})

test('mergePatch: an object replaces a primitive and vice versa; deleting a missing key is fine', () => {
  assert.deepEqual(mergePatch({ a: 1 }, { a: { b: 2 } }), { a: { b: 2 } })
  assert.deepEqual(mergePatch({ a: { b: 2 } }, { a: 'x' }), { a: 'x' })
  assert.deepEqual(mergePatch({ a: 1 }, { nope: null }), { a: 1 })
})

test('desiredPatchNotification: the patch plus $version', () => {
  assert.deepEqual(desiredPatchNotification({ a: 1 }, 4), { a: 1, $version: 4 })
})

test('read-only $version / $metadata at the root of a patch are ignored (twin show round trip)', () => {
  const t = applyDesiredPatch(createTwin(), { a: 1, $version: 99, $metadata: { $lastUpdated: 'x' } })
  assert.deepEqual(t.desired, { a: 1 })
  assert.equal(t.desiredVersion, 2)
})

test('tags and service updates: one version step, etag check (412)', () => {
  const t0 = createTwin()
  const t1 = updateTwin(t0, { tags: { site: 'lab' }, desired: { mode: 'fast' } }, { ifMatch: t0.etag })
  assert.deepEqual([t1.tags, t1.desired, t1.version, t1.desiredVersion], [{ site: 'lab' }, { mode: 'fast' }, 2, 2])
  assert.throws(
    () => updateTwin(t1, { desired: { mode: 'slow' } }, { ifMatch: t0.etag }),
    (err: unknown) => err instanceof TwinPreconditionError && err.status === 412 && /does not match/.test(err.message),
  )
  assert.equal(updateTwin(t1, { desired: { mode: 'slow' } }, { ifMatch: '*' }).desired['mode'], 'slow')
  assert.equal(updateTwin(t1, { desired: { mode: 'slow' } }, { ifMatch: `"${t1.etag}"` }).desired['mode'], 'slow', 'quoted HTTP etag')
  const replaced = updateTwin(t1, { desired: { other: 1, gone: null } }, { replace: true })
  assert.deepEqual(replaced.desired, { other: 1 })
  assert.deepEqual(replaced.tags, { site: 'lab' }, 'sections not given are kept')
  assert.equal(updateTwin(t1, {}), t1, 'nothing to do')
  const t2 = applyTagsPatch(t1, { site: null, floor: 2 })
  assert.deepEqual(t2.tags, { floor: 2 })
  assert.equal(t2.desiredVersion, t1.desiredVersion, 'tags do not move desired $version')
})

test('updateTwin validates everything before changing anything', () => {
  const t = createTwin()
  assert.throws(() => updateTwin(t, { tags: { ok: 1 }, desired: { 'bad.key': 1 } }), is400(/bad\.key/))
})

test('serviceTwinJson: the az device-twin show shape, with $metadata', () => {
  let t = createTwin({}, '2026-01-01T00:00:00.000Z')
  t = applyDesiredPatch(t, { interval: 5, cfg: { a: 1 } }, { now: '2026-01-02T00:00:00.000Z' })
  assert.deepEqual(serviceTwinJson(t, { deviceId: 'dev1' }), {
    deviceId: 'dev1',
    etag: etagFor(2),
    deviceEtag: null,
    version: 2,
    status: 'enabled',
    statusReason: null,
    statusUpdateTime: '0001-01-01T00:00:00Z',
    authenticationType: 'sas',
    connectionState: 'Disconnected',
    lastActivityTime: '0001-01-01T00:00:00Z',
    cloudToDeviceMessageCount: 0,
    x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
    modelId: '',
    capabilities: { iotEdge: false },
    deviceScope: null,
    parentScopes: [],
    properties: {
      desired: {
        interval: 5,
        cfg: { a: 1 },
        $metadata: {
          $lastUpdated: '2026-01-02T00:00:00.000Z',
          $lastUpdatedVersion: 2,
          interval: { $lastUpdated: '2026-01-02T00:00:00.000Z', $lastUpdatedVersion: 2 },
          cfg: { $lastUpdated: '2026-01-02T00:00:00.000Z', $lastUpdatedVersion: 2, a: { $lastUpdated: '2026-01-02T00:00:00.000Z', $lastUpdatedVersion: 2 } },
        },
        $version: 2,
      },
      reported: { $metadata: { $lastUpdated: '2026-01-01T00:00:00.000Z' }, $version: 1 },
    },
  })
  // A later patch restamps only what it wrote (and the objects above it); a null removes the key's metadata too.
  t = applyDesiredPatch(t, { cfg: { b: 2 }, interval: null }, { now: '2026-01-03T00:00:00.000Z' })
  const meta = serviceTwinJson(t, { deviceId: 'dev1' }).properties.desired.$metadata as Record<string, Record<string, unknown>>
  assert.equal(meta.$lastUpdated, '2026-01-03T00:00:00.000Z')
  assert.equal(meta.interval, undefined)
  assert.deepEqual(meta.cfg.a, { $lastUpdated: '2026-01-02T00:00:00.000Z', $lastUpdatedVersion: 2 })
  assert.deepEqual(meta.cfg.b, { $lastUpdated: '2026-01-03T00:00:00.000Z', $lastUpdatedVersion: 3 })
  t = applyReportedPatch(t, { fw: '1.2' }, { now: '2026-01-04T00:00:00.000Z' })
  assert.deepEqual(serviceTwinJson(t, { deviceId: 'dev1' }).properties.reported.$metadata, { $lastUpdated: '2026-01-04T00:00:00.000Z', fw: { $lastUpdated: '2026-01-04T00:00:00.000Z' } })
  t = applyTagsPatch(t, { site: 'lab' })
  const mod = serviceTwinJson(t, { deviceId: 'edge1', moduleId: '$edgeHub', status: 'disabled', connectionState: 'Connected' })
  // Module twins: no statusReason, capabilities or scopes.
  assert.deepEqual(Object.keys(mod), [
    'deviceId',
    'moduleId',
    'etag',
    'deviceEtag',
    'version',
    'status',
    'statusUpdateTime',
    'authenticationType',
    'connectionState',
    'lastActivityTime',
    'cloudToDeviceMessageCount',
    'x509Thumbprint',
    'modelId',
    'tags',
    'properties',
  ])
  assert.equal(mod.moduleId, '$edgeHub')
  assert.deepEqual(mod.tags, { site: 'lab' })
  assert.equal(serviceTwinJson(t, { deviceId: 'edge1', iotEdge: true }).capabilities?.iotEdge, true)
})

test('$metadata of a twin stored before metadata existed falls back to the "never" stamp', () => {
  const { desiredMetadata: _d, reportedMetadata: _r, ...legacy } = applyDesiredPatch(createTwin(), { a: 1 })
  assert.deepEqual(serviceTwinJson(legacy, { deviceId: 'old' }).properties.desired.$metadata, { $lastUpdated: '0001-01-01T00:00:00Z', a: { $lastUpdated: '0001-01-01T00:00:00Z' } })
})

test("the $edgeHub desired document (arrays, the seed's policy) is a valid twin", () => {
  const edgeHub = {
    schemaVersion: '1.2',
    routes: { upstream: 'FROM /messages/* INTO $upstream' },
    storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
    mqttBroker: {
      authorizations: [
        {
          identities: ['{{iot:identity}}'],
          allow: [{ operations: ['mqtt:connect'] }],
        },
        {
          identities: ['sensor_1'],
          allow: [{ operations: ['mqtt:publish'], resources: ['alerts/#'] }],
        },
      ],
      bridges: [{ endpoint: '$upstream', settings: [{ direction: 'in', topic: 'alerts/#' }] }],
    },
  }
  const t = applyDesiredPatch(createTwin(), edgeHub)
  assert.deepEqual(t.desired, edgeHub)
})

// ---------------------------------------------------------------------------------------------
// Limits → 400 (PROTOCOL.md §4 "twin desired/reported 32 KB each, depth ≤ 10")

test('a 40 KB reported patch → 400', () => {
  const patch = { blob: 'x'.repeat(40 * 1024) }
  assert.throws(() => applyReportedPatch(createTwin(), patch), is400(/reported patch is 409\d\d bytes; IoT Hub allows 32768 bytes \(32 KB\)/))
})

test('patches that grow a section past 32 KB → 400; exactly at the limit is fine', () => {
  const half = { a: 'x'.repeat(20 * 1024) }
  const t = applyReportedPatch(createTwin(), half)
  assert.throws(() => applyReportedPatch(t, { b: 'y'.repeat(20 * 1024) }), is400(/reported properties would be \d+ bytes after this update/))
  // {"a":"…"} = 8 bytes of JSON around the string
  const exact = { a: 'x'.repeat(TWIN_LIMITS.reportedBytes - 8) }
  assert.equal(jsonSize(exact), TWIN_LIMITS.reportedBytes)
  assert.doesNotThrow(() => applyReportedPatch(createTwin(), exact))
  assert.throws(() => applyReportedPatch(createTwin(), { a: 'x'.repeat(TWIN_LIMITS.reportedBytes - 7) }), is400(/32768/))
  assert.throws(() => applyDesiredPatch(createTwin(), { a: 'é'.repeat(17 * 1024) }), is400(/desired patch is \d+ bytes/), 'measured in UTF-8 bytes')
})

test('tags are limited to 8 KB', () => {
  assert.throws(() => applyTagsPatch(createTwin(), { a: 'x'.repeat(9 * 1024) }), is400(/tags patch is \d+ bytes; IoT Hub allows 8192 bytes \(8 KB\)/))
})

test('depth 10 is accepted; depth 11 → 400', () => {
  assert.doesNotThrow(() => applyReportedPatch(createTwin(), nested(10)))
  assert.doesNotThrow(() => applyDesiredPatch(createTwin(), nested(10)))
  assert.throws(() => applyReportedPatch(createTwin(), nested(11)), is400(/l1\.l2\.l3\.l4\.l5\.l6\.l7\.l8\.l9\.l10\.l11: nested 11 levels deep; IoT Hub allows at most 10/))
  assert.throws(() => applyDesiredPatch(createTwin(), nested(11)), is400(/nested 11 levels deep/))
})

test('arrays count toward depth', () => {
  let v: TwinObject['x'] = 'leaf'
  for (let i = 0; i < 11; i++) v = [v]
  assert.throws(() => applyReportedPatch(createTwin(), { x: v }), is400(/x\[0\].*nested 11 levels deep/))
})

test('malformed JSON → 400', () => {
  assert.throws(() => parseTwinJson('{"a": 1,'), is400(/twin patch is not valid JSON/))
  assert.throws(() => parseTwinJson(Buffer.from('not json')), is400(/not valid JSON/))
  assert.throws(() => parseTwinJson('[1,2]'), is400(/must be a JSON object, got an array/))
  assert.throws(() => parseTwinJson('null'), is400(/must be a JSON object, got null/))
  assert.throws(() => parseTwinJson('"s"', 'reported patch'), is400(/reported patch must be a JSON object, got string/))
  assert.deepEqual(parseTwinJson(Buffer.from('{"a":{"b":true}}')), { a: { b: true } })
})

test('a non-object patch → 400', () => {
  assert.throws(() => applyReportedPatch(createTwin(), [1]), is400(/reported patch must be a JSON object/))
  assert.throws(() => applyDesiredPatch(createTwin(), 'x'), is400(/desired patch must be a JSON object/))
})

// ---------------------------------------------------------------------------------------------
// Keys and values (IoT Hub: no control characters, '.', '$' or SP in names; names ≤ 1 KB;
// integers within ±2^52)

const badKeys: Array<[string, RegExp]> = [
  ['a.b', /contains '\.'/],
  ['$secret', /contains '\$'/],
  ['with space', /contains a space/],
  ['tab\there', /control character U\+0009/],
  ['c1\u0085', /control character U\+0085/],
  ['k'.repeat(1025), /longer than 1024 bytes/],
]
for (const [key, pattern] of badKeys) {
  test(`key ${JSON.stringify(key.slice(0, 20))} → 400`, () => {
    assert.match(keyProblem(key) ?? '', pattern)
    assert.throws(() => applyReportedPatch(createTwin(), { outer: { [key]: 1 } }), is400(pattern))
  })
}

test('ordinary keys are fine', () => {
  for (const k of ['a', 'firmware_version', 'x-y', 'température', '日本', 'k'.repeat(1024), '#tag', 'a:b']) {
    assert.equal(keyProblem(k), null, k)
  }
})

test('integers outside ±2^52 → 400; floats are fine', () => {
  assert.doesNotThrow(() => validateTwinPatch({ a: 4503599627370495, b: -4503599627370496, c: 1.5e300 }, 'reported'))
  assert.throws(() => validateTwinPatch({ a: 4503599627370496 }, 'reported'), is400(/outside IoT Hub's range/))
})

test('every problem is listed with its path', () => {
  assert.throws(
    () => validateTwinPatch({ 'a.b': 1, ok: { 'c d': 2, '$e': 3 } }, 'desired'),
    (err: unknown) => {
      assert.ok(err instanceof TwinValidationError)
      assert.deepEqual(
        err.issues.map((i) => i.path),
        ['a.b', 'ok.c d', 'ok.$e'],
      )
      assert.match(err.message, /\(and 2 more\)$/)
      return true
    },
  )
})

// ---------------------------------------------------------------------------------------------
// Robustness (fast-check) and hostile input

import fc from 'fast-check'

test('property: any JSON object patch is applied or refused with a 400, never a crash', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 5 }), (patch) => {
      try {
        const t = applyReportedPatch(createTwin(), patch)
        assert.equal(t.reportedVersion, 2)
        JSON.stringify(twinResponseBody(t))
      } catch (err) {
        assert.ok(err instanceof TwinValidationError, String(err))
      }
    }),
    { numRuns: 300 },
  )
})

test('a 100k-deep payload is a 400, not a stack overflow', () => {
  const n = 100000
  const patch = parseTwinJson(`{"a":${'['.repeat(n)}${']'.repeat(n)}}`)
  assert.throws(() => applyReportedPatch(createTwin(), patch), is400(/nested 11 levels deep/))
})

test('__proto__ is an ordinary property name', () => {
  const t = applyDesiredPatch(createTwin(), parseTwinJson('{"__proto__": {"x": 1}}'))
  assert.deepEqual(Object.keys(t.desired), ['__proto__'])
  assert.equal(Object.getPrototypeOf(t.desired), Object.prototype)
  assert.deepEqual(JSON.parse(JSON.stringify(twinResponseBody(t))), JSON.parse('{"desired":{"__proto__":{"x":1},"$version":2},"reported":{"$version":1}}'))
})
