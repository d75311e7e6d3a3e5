// Table-driven decisions for every clause of PROTOCOL.md §3.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compilePolicy, identityFromClientId, type AuthorizationStatement, type Decision, type Identity, type Operation } from '../../src/policy/index.js'

const id = identityFromClientId
type Row = [clientId: string, op: Operation, topic: string | undefined, want: 'allow' | 'deny', statement?: number | null]

function check(policy: AuthorizationStatement[], rows: Row[]): void {
  const p = compilePolicy(policy)
  for (const [c, op, topic, want, statement] of rows) {
    const what = `${c} ${op} ${topic ?? ''}`
    const d: Decision = p.decide(id(c), op, topic)
    assert.equal(d.decision, want, `${what}: ${d.reason}`)
    if (statement !== undefined) assert.equal(d.statement === null ? null : d.statement.index, statement, `${what} statement: ${d.reason}`)
    assert.ok(d.reason.length > 0)
    // The cached per-identity view agrees, twice (second call served from the cache).
    const v = p.forIdentity(id(c))
    for (let i = 0; i < 2; i++) {
      const b = op === 'connect' ? v.canConnect() : op === 'publish' ? v.canPublish(topic as string) : v.canSubscribe(topic as string)
      assert.equal(b, want === 'allow', `${what} via forIdentity`)
    }
  }
}

const CONNECT_ALL: AuthorizationStatement = { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }

test('default deny, and mqtt:connect always needs an explicit allow', () => {
  check([], [
    ['d1', 'connect', undefined, 'deny', null],
    ['d1', 'publish', 'a', 'deny', null],
    ['d1', 'subscribe', 'a', 'deny', null],
  ])
  check([{ identities: ['d1'], allow: [{ operations: ['mqtt:publish'], resources: ['#'] }] }], [['d1', 'connect', undefined, 'deny', null]])
})

test('statements in document order: the first matching statement decides', () => {
  const policy: AuthorizationStatement[] = [
    { identities: ['d1'], allow: [{ operations: ['mqtt:publish'], resources: ['a/b'] }] },
    { identities: ['d1'], deny: [{ operations: ['mqtt:publish'], resources: ['a/#'] }] },
    { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:publish'], resources: ['a/#'] }] },
  ]
  check(policy, [
    ['d1', 'publish', 'a/b', 'allow', 0],
    ['d1', 'publish', 'a/c', 'deny', 1],
    ['d1', 'publish', 'a', 'deny', 1],
    ['d2', 'publish', 'a/c', 'allow', 2],
    ['d1', 'publish', 'b', 'deny', null],
  ])
})

test('inside one statement deny rules win over allow rules, whatever their order in the file', () => {
  const policy: AuthorizationStatement[] = [
    {
      identities: ['d1'],
      allow: [{ operations: ['mqtt:connect', 'mqtt:publish', 'mqtt:subscribe'], resources: ['a/#'] }],
      deny: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['a/secret'] }],
    },
    { identities: ['d1'], allow: [{ operations: ['mqtt:publish'], resources: ['a/secret'] }] },
  ]
  check(policy, [
    ['d1', 'connect', undefined, 'allow', 0],
    ['d1', 'publish', 'a/x', 'allow', 0],
    ['d1', 'publish', 'a/secret', 'deny', 0], // statement 1 is never reached
    ['d1', 'subscribe', 'a/x/#', 'allow', 0],
    ['d1', 'subscribe', 'a/+', 'deny', 0],
    ['d1', 'subscribe', 'a/#', 'deny', 0],
  ])
  check([{ identities: ['d1'], allow: [{ operations: ['mqtt:connect'] }], deny: [{ operations: ['mqtt:connect'] }] }], [['d1', 'connect', undefined, 'deny', 0]])
})

test('subscribe: a filter is allowed only if every topic it matches is allowed', () => {
  check([{ identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['a/+'] }] }], [
    ['d1', 'subscribe', 'a/+', 'allow', 0],
    ['d1', 'subscribe', 'a/b', 'allow', 0],
    ['d1', 'subscribe', 'a/#', 'deny', null], // a/# also matches a and a/b/c
    ['d1', 'subscribe', 'a', 'deny', null],
    ['d1', 'subscribe', '+/b', 'deny', null],
    ['d1', 'subscribe', 'a/+/c', 'deny', null],
  ])
  check([{ identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['a/#'] }] }], [
    ['d1', 'subscribe', 'a/#', 'allow', 0],
    ['d1', 'subscribe', 'a/+', 'allow', 0],
    ['d1', 'subscribe', 'a/b/#', 'allow', 0],
    ['d1', 'subscribe', 'a', 'allow', 0], // `a/#` matches `a` itself
    ['d1', 'subscribe', 'a/+/+/#', 'allow', 0],
    ['d1', 'subscribe', '#', 'deny', null],
    ['d1', 'subscribe', '+/b', 'deny', null],
  ])
  // Exact for unions across statements: a + a/+/# together cover a/#.
  check([
    { identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['a'] }] },
    { identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['a/+/#'] }] },
  ], [
    ['d1', 'subscribe', 'a/#', 'allow', 0],
    ['d1', 'subscribe', 'a/b/#', 'allow', 1],
  ])
  // …and a deny inside the filter's range denies the filter, reporting the denying statement.
  check([
    { identities: ['d1'], deny: [{ operations: ['mqtt:subscribe'], resources: ['a/b/c'] }] },
    { identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['#'] }] },
  ], [
    ['d1', 'subscribe', 'a/#', 'deny', 0],
    ['d1', 'subscribe', 'a/+/c', 'deny', 0],
    ['d1', 'subscribe', 'a/+/d', 'allow', 1],
    ['d1', 'subscribe', 'b/#', 'allow', 1],
  ])
})

test('subscribe deny reasons name a concrete topic the filter matches', () => {
  const p = compilePolicy([{ identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['a/+'] }] }])
  const d = p.decide(id('d1'), 'subscribe', 'a/#')
  assert.equal(d.reason, 'no statement allows mqtt:subscribe on a (matched by "a/#") for d1: default deny')
})

test('the $ rule: wildcards never match $ topics, and $ topics are never granted by rules', () => {
  const policy: AuthorizationStatement[] = [
    CONNECT_ALL,
    { identities: ['d1'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#', '+/b', '$SYS/#', '$edgehub/#'] }] },
  ]
  check(policy, [
    ['d1', 'publish', 'x/b', 'allow', 1],
    ['d1', 'subscribe', '+/b', 'allow', 1], // +/b does not reach $SYS/b, so it is fully allowed
    ['d1', 'subscribe', '#', 'allow', 1],
    ['d1', 'publish', '$SYS/b', 'deny', null], // even though a rule names $SYS/#
    ['d1', 'subscribe', '$SYS/b', 'deny', null],
    ['d1', 'subscribe', '$SYS/#', 'deny', null],
    ['d1', 'publish', '$edgehub/d1/x', 'deny', null],
    ['d1', 'publish', '$iothub/foo', 'deny', null],
    ['d1', 'subscribe', '$iothub/#', 'deny', null],
  ])
})

test('built-in rules: a device uses its own IoT Hub topics without rules', () => {
  check([CONNECT_ALL], [
    ['d1', 'publish', 'devices/d1/messages/events', 'allow', null],
    ['d1', 'publish', 'devices/d1/messages/events/', 'allow', null],
    ['d1', 'publish', 'devices/d1/messages/events/%24.ct=application%2Fjson&k=v', 'allow', null],
    ['d1', 'subscribe', 'devices/d1/messages/devicebound/#', 'allow', null],
    ['d1', 'publish', '$iothub/twin/GET/?$rid=1', 'allow', null],
    ['d1', 'publish', '$iothub/twin/PATCH/properties/reported/?$rid=2', 'allow', null],
    ['d1', 'publish', '$iothub/methods/res/200/?$rid=3', 'allow', null],
    ['d1', 'subscribe', '$iothub/twin/res/#', 'allow', null],
    ['d1', 'subscribe', '$iothub/twin/PATCH/properties/desired/#', 'allow', null],
    ['d1', 'subscribe', '$iothub/methods/POST/#', 'allow', null],
    // but not the other direction, nor other $iothub topics
    ['d1', 'subscribe', '$iothub/twin/GET/#', 'deny', null],
    ['d1', 'publish', '$iothub/twin/res/200/?$rid=1', 'deny', null],
    ['d1', 'publish', '$iothub/methods/POST/m', 'deny', null],
    ['d1', 'subscribe', 'devices/d1/messages/events/#', 'deny', null],
    ['d1', 'publish', 'devices/d1/messages/devicebound/x', 'deny', null],
    ['d1', 'subscribe', 'devices/d1/#', 'deny', null],
    // a device is not a module
    ['d1', 'subscribe', 'devices/d1/modules/m1/inputs/#', 'deny', null],
  ])
})

test('built-in rules: a module uses its own topics, including the seed form devices/<d>/<m>/messages/events', () => {
  check([CONNECT_ALL], [
    ['d1/m1', 'publish', 'devices/d1/modules/m1/messages/events/', 'allow', null],
    ['d1/m1', 'publish', 'devices/d1/m1/messages/events', 'allow', null],
    ['d1/m1', 'subscribe', 'devices/d1/modules/m1/inputs/#', 'allow', null],
    ['d1/m1', 'subscribe', 'devices/d1/modules/m1/inputs/in1/#', 'allow', null],
    ['d1/m1', 'subscribe', '$iothub/methods/POST/#', 'allow', null],
    ['d1/m1', 'publish', 'devices/d1/messages/events/', 'deny', null], // the device's, not the module's
    ['d1/m1', 'subscribe', 'devices/d1/messages/devicebound/#', 'deny', null],
    ['d1/m1', 'publish', 'devices/d1/modules/m2/messages/events/', 'deny', null],
  ])
})

test("another identity's IoT Hub topics need explicit rules", () => {
  check([CONNECT_ALL], [
    ['d2', 'publish', 'devices/d1/messages/events/', 'deny', null],
    ['d2', 'subscribe', 'devices/d1/messages/devicebound/#', 'deny', null],
    ['d2', 'subscribe', 'devices/+/messages/events/#', 'deny', null],
  ])
  check([CONNECT_ALL, { identities: ['monitor'], allow: [{ operations: ['mqtt:subscribe'], resources: ['devices/+/messages/events/#'] }] }], [
    ['monitor', 'subscribe', 'devices/+/messages/events/#', 'allow', 1],
    ['monitor', 'subscribe', 'devices/d1/messages/events/#', 'allow', 1],
    ['monitor', 'subscribe', 'devices/#', 'deny', null],
    ['monitor', 'publish', 'devices/d1/messages/events/', 'deny', null],
    ['d1', 'subscribe', 'devices/+/messages/events/#', 'deny', null],
  ])
  // Built-ins come first: own topics stay allowed even under a broad deny.
  check([{ identities: ['d1'], deny: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] }], [
    ['d1', 'publish', 'devices/d1/messages/events/', 'allow', null],
    ['d1', 'publish', 'a', 'deny', 0],
    ['d1', 'subscribe', 'devices/d1/messages/devicebound/#', 'allow', null],
  ])
  // A subscription mixing own built-in topics and statement-granted topics.
  check([{ identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['devices/d1/messages/events/#'] }] }], [
    ['d1', 'subscribe', 'devices/d1/messages/+/#', 'deny', null],
    ['d1', 'subscribe', 'devices/d1/messages/events/#', 'allow', 0],
  ])
  check([
    { identities: ['d1'], allow: [{ operations: ['mqtt:subscribe'], resources: ['devices/d1/#'] }] },
  ], [['d1', 'subscribe', 'devices/d1/#', 'allow', 0]])
})

test('identity variables', () => {
  const policy: AuthorizationStatement[] = [
    { identities: ['{{iot:device_id}}'], allow: [{ operations: ['mqtt:connect'] }] },
    { identities: ['{{iot:module_id}}'], deny: [{ operations: ['mqtt:connect'] }] },
    { identities: ['{{mqtt:client_id}}'], allow: [{ operations: ['mqtt:publish'], resources: ['any/{{mqtt:client_id}}'] }] },
  ]
  check(policy, [
    ['d1', 'connect', undefined, 'allow', 0],
    ['d1/m1', 'connect', undefined, 'deny', 1],
    ['d1', 'publish', 'any/d1', 'allow', 2],
    ['d1/m1', 'publish', 'any/d1/m1', 'allow', 2],
    ['d1/m1', 'publish', 'any/d1', 'deny', null],
  ])
})

test('resource variables substitute the client: identity, device id, module id', () => {
  const policy: AuthorizationStatement[] = [
    {
      identities: ['{{iot:identity}}'],
      allow: [
        {
          operations: ['mqtt:publish', 'mqtt:subscribe'],
          resources: ['own/{{iot:identity}}/#', 'dev/{{iot:device_id}}/+', 'mod/{{iot:device_id}}/{{iot:module_id}}', 'x-{{iot:device_id}}-y'],
        },
      ],
    },
  ]
  check(policy, [
    ['d1', 'publish', 'own/d1/a', 'allow', 0],
    ['d1', 'publish', 'own/d2/a', 'deny', null],
    ['d1', 'subscribe', 'own/d1/#', 'allow', 0],
    ['d1', 'subscribe', 'own/+/#', 'deny', null],
    ['d1/m1', 'publish', 'own/d1/m1/a', 'allow', 0], // a module's client id spans two levels
    ['d1/m1', 'publish', 'own/d1/a', 'deny', null],
    ['d1', 'publish', 'dev/d1/z', 'allow', 0],
    ['d1/m1', 'publish', 'dev/d1/z', 'allow', 0],
    ['d1/m1', 'publish', 'mod/d1/m1', 'allow', 0],
    ['d1/m1', 'publish', 'mod/d1/m2', 'deny', null],
    // a device-only client never matches a resource that needs {{iot:module_id}}
    ['d1', 'publish', 'mod/d1/', 'deny', null],
    ['d1', 'publish', 'mod/d1', 'deny', null],
    ['d1', 'publish', 'x-d1-y', 'allow', 0],
  ])
})

test('substituted ids are literal: a device id containing + is not a wildcard', () => {
  const odd: Identity = { clientId: 'd+', deviceId: 'd+' }
  const p = compilePolicy([{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:subscribe', 'mqtt:publish'], resources: ['r/{{iot:device_id}}'] }] }])
  assert.equal(p.decide(odd, 'subscribe', 'r/+').decision, 'deny')
  assert.equal(p.decide(odd, 'subscribe', 'r/x').decision, 'deny')
  assert.equal(p.decide({ clientId: 'x', deviceId: 'x' }, 'subscribe', 'r/x').decision, 'allow')
  // and its own built-in topics do not open other devices' topics
  assert.equal(p.decide(odd, 'subscribe', 'devices/+/messages/devicebound/#').decision, 'deny')
})

test('invalid topics and filters are denied with a reason', () => {
  const p = compilePolicy([{ identities: ['d1'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] }])
  const d = p.decide(id('d1'), 'publish', 'a/+')
  assert.equal(d.decision, 'deny')
  assert.match(d.reason, /invalid topic name/)
  assert.equal(p.decide(id('d1'), 'subscribe', 'a/#/b').decision, 'deny')
  assert.equal(p.decide(id('d1'), 'subscribe', '').decision, 'deny')
  assert.equal(p.decide(id('d1'), 'publish').decision, 'deny')
})

test('reasons read as sentences naming the statement', () => {
  const p = compilePolicy([
    { description: 'alerts only', identities: ['sensor_1'], allow: [{ operations: ['mqtt:publish'], resources: ['events/+'] }] },
  ])
  assert.equal(p.decide(id('sensor_1'), 'publish', 'events/alerts').reason, 'statement 0 (alerts only) allows mqtt:publish on events/alerts (matches "events/+")')
  assert.equal(p.decide(id('sensor_1'), 'connect').reason, 'no statement allows mqtt:connect for sensor_1: default deny')
})

test('decision caches stay bounded and correct past their size', () => {
  const p = compilePolicy([{ identities: ['d1'], allow: [{ operations: ['mqtt:publish'], resources: ['a/+'] }] }])
  const v = p.forIdentity(id('d1'))
  for (let i = 0; i < 10_000; i++) assert.equal(v.canPublish(`a/${i}`), true)
  assert.equal(v.canPublish('b/1'), false)
  assert.equal(p.forIdentity(id('d1')), v)
})
