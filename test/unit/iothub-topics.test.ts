import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  encodePropertyBag,
  formatC2dTopic,
  formatMethodRequestTopic,
  formatMethodResponseTopic,
  formatModuleInputTopic,
  formatTelemetryTopic,
  formatTwinDesiredTopic,
  formatTwinGetTopic,
  formatTwinReportedTopic,
  formatTwinResponseTopic,
  iotHubSubscriptionKind,
  isIotHubTopic,
  ownerOf,
  parseIotHubTopic,
  parsePropertyBag,
  parsePropsFlag,
  type ParsedTopic,
} from '../../src/iothub/index.js'

// ---------------------------------------------------------------------------------------------
// Classification: every topic form from PROTOCOL.md §4, IoT Hub's and the seed's.

const cases: Array<[string, string, ParsedTopic]> = [
  // telemetry, device
  ['device, trailing slash', 'devices/dev1/messages/events/', { kind: 'telemetry', deviceId: 'dev1', form: 'device', properties: {}, systemProperties: {} }],
  ['device, seed form without slash', 'devices/dev1/messages/events', { kind: 'telemetry', deviceId: 'dev1', form: 'device', properties: {}, systemProperties: {} }],
  [
    'device with property bag',
    'devices/dev1/messages/events/a=1&b=two',
    { kind: 'telemetry', deviceId: 'dev1', form: 'device', properties: { a: '1', b: 'two' }, systemProperties: {} },
  ],
  [
    'device with SDK-encoded system properties',
    'devices/dev1/messages/events/%24.mid=m1&%24.cid=c1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.to=%2Fx&%24.on=out1&temp=30',
    {
      kind: 'telemetry',
      deviceId: 'dev1',
      form: 'device',
      properties: { temp: '30' },
      systemProperties: { messageId: 'm1', correlationId: 'c1', contentType: 'application/json', contentEncoding: 'utf-8', to: '/x', outputName: 'out1' },
    },
  ],
  [
    'device with raw $. keys (mosquitto_pub users)',
    'devices/dev1/messages/events/$.ct=application/json&$.ce=utf-8',
    { kind: 'telemetry', deviceId: 'dev1', form: 'device', properties: {}, systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8' } },
  ],
  // telemetry, module
  [
    'module (IoT Hub form)',
    'devices/edge1/modules/sensor/messages/events/',
    { kind: 'telemetry', deviceId: 'edge1', moduleId: 'sensor', form: 'modules', properties: {}, systemProperties: {} },
  ],
  [
    'module (IoT Hub form) with $.on',
    'devices/edge1/modules/sensor/messages/events/%24.on=temperatureOutput',
    { kind: 'telemetry', deviceId: 'edge1', moduleId: 'sensor', form: 'modules', properties: {}, systemProperties: { outputName: 'temperatureOutput' } },
  ],
  [
    "module (seed's form, no slash)",
    'devices/edge1/sensor/messages/events',
    { kind: 'telemetry', deviceId: 'edge1', moduleId: 'sensor', form: 'seed', properties: {}, systemProperties: {} },
  ],
  [
    "module (seed's form) with bag",
    'devices/edge1/sensor/messages/events/k=v',
    { kind: 'telemetry', deviceId: 'edge1', moduleId: 'sensor', form: 'seed', properties: { k: 'v' }, systemProperties: {} },
  ],
  // c2d and module inputs
  ['c2d', 'devices/dev1/messages/devicebound/%24.mid=1&x=y', { kind: 'c2d', deviceId: 'dev1', properties: { x: 'y' }, systemProperties: { messageId: '1' } }],
  ['c2d, no bag', 'devices/dev1/messages/devicebound', { kind: 'c2d', deviceId: 'dev1', properties: {}, systemProperties: {} }],
  [
    'module input',
    'devices/edge1/modules/filter/inputs/in1/a=b',
    { kind: 'module-input', deviceId: 'edge1', moduleId: 'filter', inputName: 'in1', properties: { a: 'b' }, systemProperties: {} },
  ],
  // twin
  ['twin GET $rid', '$iothub/twin/GET/?$rid=42', { kind: 'twin-get', rid: '42', ridKey: '$rid' }],
  ["twin GET seed's rid", '$iothub/twin/GET/?rid=42', { kind: 'twin-get', rid: '42', ridKey: 'rid' }],
  ["twin GET seed's rid with /# junk", '$iothub/twin/GET/?rid=abc/#', { kind: 'twin-get', rid: 'abc', ridKey: 'rid' }],
  ['twin GET without slash before ?', '$iothub/twin/GET?$rid=7', { kind: 'twin-get', rid: '7', ridKey: '$rid' }],
  [
    'twin reported PATCH',
    '$iothub/twin/PATCH/properties/reported/?$rid=9',
    { kind: 'twin-patch-reported', rid: '9', ridKey: '$rid', params: {} },
  ],
  [
    'twin reported PATCH with extra params',
    '$iothub/twin/PATCH/properties/reported/?$rid=9&$version=3',
    { kind: 'twin-patch-reported', rid: '9', ridKey: '$rid', params: { $version: '3' } },
  ],
  ['twin reported PATCH, seed rid', '$iothub/twin/PATCH/properties/reported/?rid=r1', { kind: 'twin-patch-reported', rid: 'r1', ridKey: 'rid', params: {} }],
  ['twin response 200', '$iothub/twin/res/200/?$rid=42', { kind: 'twin-response', status: 200, rid: '42', ridKey: '$rid' }],
  ['twin response 204 + version', '$iothub/twin/res/204/?$rid=42&$version=5', { kind: 'twin-response', status: 204, rid: '42', ridKey: '$rid', version: 5 }],
  ['twin response seed rid', '$iothub/twin/res/200/?rid=42', { kind: 'twin-response', status: 200, rid: '42', ridKey: 'rid' }],
  ['twin desired notification', '$iothub/twin/PATCH/properties/desired/?$version=12', { kind: 'twin-desired', version: 12 }],
  // methods
  ['method request', '$iothub/methods/POST/reboot/?$rid=1f', { kind: 'method-request', methodName: 'reboot', rid: '1f' }],
  ['method response $rid', '$iothub/methods/res/200/?$rid=1f', { kind: 'method-response', status: 200, rid: '1f', ridKey: '$rid' }],
  ["method response seed's path rid", '$iothub/methods/res/200/1f', { kind: 'method-response', status: 200, rid: '1f', ridKey: 'path' }],
  ['method response 500', '$iothub/methods/res/500/?$rid=x', { kind: 'method-response', status: 500, rid: 'x', ridKey: '$rid' }],
  // user topics
  ['user topic', 'alerts/fire', { kind: 'user' }],
  ['user topic with leading slash', '/local/telemetry/x', { kind: 'user' }],
  ['other $ topic is not IoT Hub', '$SYS/broker/uptime', { kind: 'user' }],
]

for (const [name, topic, expected] of cases) {
  test(`parseIotHubTopic: ${name}: ${topic}`, () => {
    assert.deepEqual(parseIotHubTopic(topic), expected)
  })
}

const invalid: Array<[string, string]> = [
  ['twin GET without rid', '$iothub/twin/GET/'],
  ['twin res with a non-numeric status', '$iothub/twin/res/OK/?$rid=1'],
  ['unknown twin verb', '$iothub/twin/DELETE/?$rid=1'],
  ['method response without rid', '$iothub/methods/res/200/'],
  ['method response without status', '$iothub/methods/res/'],
  ['method POST without name', '$iothub/methods/POST/?$rid=1'],
  ['unknown $iothub area', '$iothub/streams/POST/x'],
  ['devices without id', 'devices//messages/events'],
  ['devices, unknown shape', 'devices/dev1/foo'],
]
for (const [name, topic] of invalid) {
  test(`parseIotHubTopic: invalid: ${name}: ${topic}`, () => {
    const p = parseIotHubTopic(topic)
    assert.equal(p.kind, 'invalid')
    assert.ok(p.kind === 'invalid' && p.reason.length > 0)
  })
}

test('parseIotHubTopic: an invalid devices/ topic still names its owner', () => {
  const p = parseIotHubTopic('devices/dev1/foo')
  assert.deepEqual(p, { kind: 'invalid', reason: 'not an IoT Hub device topic: devices/dev1/foo', owner: { deviceId: 'dev1' } })
})

test('parseIotHubTopic: the rid is echoed exactly as written (not decoded)', () => {
  const p = parseIotHubTopic('$iothub/twin/GET/?$rid=a%20b')
  assert.deepEqual(p, { kind: 'twin-get', rid: 'a%20b', ridKey: '$rid' })
})

test('parseIotHubTopic: $rid wins when both rid and $rid are given', () => {
  assert.deepEqual(parseIotHubTopic('$iothub/twin/GET/?rid=1&$rid=2'), { kind: 'twin-get', rid: '2', ridKey: '$rid' })
})

test('isIotHubTopic', () => {
  assert.equal(isIotHubTopic('devices/x/messages/events'), true)
  assert.equal(isIotHubTopic('$iothub/twin/GET/?$rid=1'), true)
  assert.equal(isIotHubTopic('alerts/x'), false)
  assert.equal(isIotHubTopic('$SYS/x'), false)
})

// ---------------------------------------------------------------------------------------------
// ownerOf

const owners: Array<[string, ReturnType<typeof ownerOf>]> = [
  ['devices/dev1/messages/events/', { deviceId: 'dev1' }],
  ['devices/dev1/messages/events', { deviceId: 'dev1' }],
  ['devices/dev1/messages/devicebound/#', { deviceId: 'dev1' }],
  ['devices/edge1/modules/sensor/messages/events/', { deviceId: 'edge1', moduleId: 'sensor' }],
  ['devices/edge1/sensor/messages/events', { deviceId: 'edge1', moduleId: 'sensor' }],
  ['devices/edge1/modules/filter/inputs/#', { deviceId: 'edge1', moduleId: 'filter' }],
  ['devices/edge1/modules/filter/inputs/in1/a=b', { deviceId: 'edge1', moduleId: 'filter' }],
  // A module literally named "modules", seed form: the parser and ownerOf agree.
  ['devices/edge1/modules/messages/events', { deviceId: 'edge1', moduleId: 'modules' }],
  ['devices/dev1/whatever', { deviceId: 'dev1' }],
  ['devices/+/messages/events/#', null],
  ['devices/#', null],
  ['devices/dev1/#', null],
  ['devices/dev1/+/messages/events', null],
  ['devices/edge1/modules/+/inputs/#', null],
  ['$iothub/twin/res/#', null],
  ['alerts/#', null],
]
for (const [topic, expected] of owners) {
  test(`ownerOf(${topic})`, () => {
    assert.deepEqual(ownerOf(topic), expected)
  })
}

test('ownerOf agrees with parseIotHubTopic for every telemetry/c2d/input case', () => {
  for (const [, topic, parsed] of cases) {
    if (parsed.kind === 'telemetry' || parsed.kind === 'c2d' || parsed.kind === 'module-input') {
      const moduleId = parsed.kind === 'c2d' ? undefined : parsed.moduleId
      assert.deepEqual(ownerOf(topic), moduleId === undefined ? { deviceId: parsed.deviceId } : { deviceId: parsed.deviceId, moduleId }, topic)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// Subscription filters

test('iotHubSubscriptionKind', () => {
  assert.equal(iotHubSubscriptionKind('$iothub/twin/res/#'), 'twin-response')
  assert.equal(iotHubSubscriptionKind('$iothub/twin/PATCH/properties/desired/#'), 'twin-desired')
  assert.equal(iotHubSubscriptionKind('$iothub/methods/POST/#'), 'method-request')
  assert.equal(iotHubSubscriptionKind('$iothub/methods/POST/reboot/#'), 'method-request')
  assert.equal(iotHubSubscriptionKind('devices/dev1/messages/devicebound/#'), 'c2d')
  assert.equal(iotHubSubscriptionKind('devices/e/modules/m/inputs/#'), 'module-input')
  assert.equal(iotHubSubscriptionKind('devices/+/messages/events/#'), null)
  assert.equal(iotHubSubscriptionKind('alerts/#'), null)
})

// ---------------------------------------------------------------------------------------------
// Formatting

test('format: hub → device topics', () => {
  assert.equal(formatTwinResponseTopic(200, '42'), '$iothub/twin/res/200/?$rid=42')
  assert.equal(formatTwinResponseTopic(204, '42', '$rid', 5), '$iothub/twin/res/204/?$rid=42&$version=5')
  assert.equal(formatTwinResponseTopic(200, 'abc', 'rid'), '$iothub/twin/res/200/?rid=abc', "seed's key answered in kind")
  assert.equal(formatTwinResponseTopic(400, '1'), '$iothub/twin/res/400/?$rid=1')
  assert.equal(formatTwinDesiredTopic(7), '$iothub/twin/PATCH/properties/desired/?$version=7')
  assert.equal(formatMethodRequestTopic('reboot', 'r1'), '$iothub/methods/POST/reboot/?$rid=r1')
  assert.equal(formatC2dTopic('dev1'), 'devices/dev1/messages/devicebound/')
  assert.equal(
    formatC2dTopic('dev1', { a: 'b' }, { messageId: 'm1', to: '/devices/dev1/messages/deviceBound' }),
    'devices/dev1/messages/devicebound/%24.mid=m1&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&a=b',
  )
  assert.equal(
    formatModuleInputTopic('edge1', 'filter', 'in1', { temperature: '35' }, { contentType: 'application/json' }),
    'devices/edge1/modules/filter/inputs/in1/%24.ct=application%2Fjson&temperature=35',
  )
})

test('format: device → hub topics', () => {
  assert.equal(formatTelemetryTopic({ deviceId: 'dev1' }), 'devices/dev1/messages/events/')
  assert.equal(formatTelemetryTopic({ deviceId: 'e', moduleId: 'm' }, { a: '1' }, { outputName: 'o' }), 'devices/e/modules/m/messages/events/%24.on=o&a=1')
  assert.equal(formatTwinGetTopic('1'), '$iothub/twin/GET/?$rid=1')
  assert.equal(formatTwinGetTopic('1', 'rid'), '$iothub/twin/GET/?rid=1')
  assert.equal(formatTwinReportedTopic('2'), '$iothub/twin/PATCH/properties/reported/?$rid=2')
  assert.equal(formatMethodResponseTopic(200, 'r1'), '$iothub/methods/res/200/?$rid=r1')
})

test('format → parse round trips', () => {
  assert.deepEqual(parseIotHubTopic(formatTwinResponseTopic(204, 'x', 'rid', 3)), { kind: 'twin-response', status: 204, rid: 'x', ridKey: 'rid', version: 3 })
  assert.deepEqual(parseIotHubTopic(formatMethodRequestTopic('do', '9')), { kind: 'method-request', methodName: 'do', rid: '9' })
  assert.deepEqual(parseIotHubTopic(formatTwinDesiredTopic(2)), { kind: 'twin-desired', version: 2 })
  const t = parseIotHubTopic(formatModuleInputTopic('e', 'm', 'in', { k: 'v' }, { messageId: 'id' }))
  assert.deepEqual(t, { kind: 'module-input', deviceId: 'e', moduleId: 'm', inputName: 'in', properties: { k: 'v' }, systemProperties: { messageId: 'id' } })
})

// ---------------------------------------------------------------------------------------------
// Property bags

test('property bag: round trip with special characters', () => {
  const properties = {
    'a b': 'x y',
    'amp&key': 'v&w',
    'eq=key': 'a=b=c',
    slash: '/devices/x/y',
    pct: '100%',
    plus: '1+1',
    unicode: 'température ✓ 日本',
    quote: `it's "q"`,
    hash: '#1?',
    empty: '',
  }
  const systemProperties = {
    messageId: 'id with spaces',
    correlationId: 'c&1',
    contentType: 'application/json; charset=utf-8',
    contentEncoding: 'utf-8',
    to: '/devices/d/messages/deviceBound',
    outputName: 'out/1',
    userId: 'u',
    expiryTimeUtc: '2030-01-01T00:00:00.000Z',
  }
  const bag = encodePropertyBag(properties, systemProperties)
  assert.ok(!bag.includes('/'), 'a bag never contains a raw "/" (it would split the topic)')
  assert.ok(!bag.includes('#') && !bag.includes('+'), 'no MQTT wildcard characters in a topic name')
  assert.deepEqual(parsePropertyBag(bag), { properties, systemProperties })
  // …and through a whole topic
  const topic = formatC2dTopic('dev1', properties, systemProperties)
  assert.deepEqual(parseIotHubTopic(topic), { kind: 'c2d', deviceId: 'dev1', properties, systemProperties })
})

test('property bag: encodes $ as %24 like IoT Hub (Embedded C SDK matches "%24.mid")', () => {
  assert.equal(encodePropertyBag({}, { messageId: '1', contentType: 'text/plain' }), '%24.mid=1&%24.ct=text%2Fplain')
  assert.equal(encodePropertyBag(), '')
})

test('property bag: lenient parsing', () => {
  assert.deepEqual(parsePropertyBag(''), { properties: {}, systemProperties: {} })
  assert.deepEqual(parsePropertyBag('a=1&&b=2&'), { properties: { a: '1', b: '2' }, systemProperties: {} })
  assert.deepEqual(parsePropertyBag('flag'), { properties: { flag: '' }, systemProperties: {} })
  assert.deepEqual(parsePropertyBag('a=%zz'), { properties: { a: '%zz' }, systemProperties: {} }, 'malformed escape kept')
  assert.deepEqual(parsePropertyBag('a=1+1'), { properties: { a: '1+1' }, systemProperties: {} }, '+ is not a space (decodeURIComponent, as the SDK)')
  assert.deepEqual(parsePropertyBag('a=1&a=2'), { properties: { a: '2' }, systemProperties: {} })
  assert.deepEqual(parsePropertyBag('%24.foo=1'), { properties: { '$.foo': '1' }, systemProperties: {} }, 'unknown $. keys stay app properties')
})

test('property bag: a raw "/" in a value survives in a telemetry topic', () => {
  const p = parseIotHubTopic('devices/d/messages/events/$.to=/devices/d/x&k=v')
  assert.deepEqual(p, { kind: 'telemetry', deviceId: 'd', form: 'device', properties: { k: 'v' }, systemProperties: { to: '/devices/d/x' } })
})

test("parsePropsFlag: az's a=1;b=2 and the URL form", () => {
  assert.deepEqual(parsePropsFlag('a=1;b=x y;$.ct=application/json'), {
    properties: { a: '1', b: 'x y' },
    systemProperties: { contentType: 'application/json' },
  })
  assert.deepEqual(parsePropsFlag('a=1&b=x%20y'), { properties: { a: '1', b: 'x y' }, systemProperties: {} })
})

// ---------------------------------------------------------------------------------------------
// Properties (fast-check): never throw, always round-trip

import fc from 'fast-check'
import { SYSTEM_PROPERTY_KEYS } from '../../src/iothub/index.js'

const systemWireKeys = new Set(SYSTEM_PROPERTY_KEYS.map(([k]) => k))
const text = fc.string({ unit: 'grapheme', maxLength: 12 })
const appKey = text.filter((k) => k !== '' && !systemWireKeys.has(k))

test('property: encode → parse returns the same bag for any well-formed strings (incl. __proto__)', () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.oneof(appKey, fc.constant('__proto__')), text, { maxKeys: 6, noNullPrototype: true }),
      fc.record({ messageId: text, contentType: text, outputName: text }, { requiredKeys: [], noNullPrototype: true }),
      (properties, systemProperties) => {
        const parsed = parsePropertyBag(encodePropertyBag(properties, systemProperties))
        assert.deepEqual(parsed.properties, properties)
        assert.deepEqual(parsed.systemProperties, systemProperties)
      },
    ),
    { numRuns: 300 },
  )
})

test('property: lone surrogates are encoded (as U+FFFD), never thrown', () => {
  assert.equal(encodePropertyBag({ k: 'a\uD800b' }), 'k=a%EF%BF%BDb')
  fc.assert(
    fc.property(fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 })), (p) => {
      encodePropertyBag(p)
    }),
    { numRuns: 200 },
  )
})

test('property: parseIotHubTopic and ownerOf never throw', () => {
  const seg = fc.oneof(
    fc.constantFrom('devices', '$iothub', 'twin', 'methods', 'GET', 'PATCH', 'POST', 'res', '200', 'modules', 'messages', 'events', 'devicebound', 'inputs', 'properties', 'reported', 'desired', '', '+', '#', '?$rid=1', '?rid=', '%', '%24.mid=%zz&'),
    fc.string({ unit: 'binary', maxLength: 6 }),
  )
  fc.assert(
    fc.property(fc.array(seg, { maxLength: 8 }), (segs) => {
      const topic = segs.join('/')
      const p = parseIotHubTopic(topic)
      assert.ok(typeof p.kind === 'string')
      ownerOf(topic)
      iotHubSubscriptionKind(topic)
    }),
    { numRuns: 1000 },
  )
})
