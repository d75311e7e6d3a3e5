// Validation: every error carries its JSON path and a fix (PROTOCOL.md §3).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvalidDocumentError } from '../../src/errors.js'
import { validateEdgeHubDesired } from '../../src/edgehub/index.js'
import { compilePolicy, parseLenientJson, validatePolicy, type PolicyIssue } from '../../src/policy/index.js'

const connect = { operations: ['mqtt:connect'] }

function errorsOf(issues: PolicyIssue[]): Map<string, string> {
  return new Map(issues.filter((i) => i.severity === 'error').map((i) => [i.path, i.message]))
}

test('unknown operation: the exact message of PROTOCOL.md §3, at its path', () => {
  const policy = [
    { identities: ['a'], allow: [connect] },
    { identities: ['b'], allow: [connect] },
    { identities: ['c'], allow: [{ operations: ['mqtt:pub'], resources: ['x'] }] },
  ]
  const issues = validatePolicy(policy)
  assert.deepEqual(issues, [
    { path: 'authorizations[2].allow[0].operations[0]', message: 'unknown operation "mqtt:pub"; supported: mqtt:connect, mqtt:publish, mqtt:subscribe', severity: 'error' },
  ])
  // Inside an $edgeHub document the path is relative to the desired object.
  const inDoc = errorsOf(validateEdgeHubDesired({ schemaVersion: '1.2', mqttBroker: { authorizations: policy } }))
  assert.ok(inDoc.has('mqttBroker.authorizations[2].allow[0].operations[0]'))
})

test('unknown variable, in identities and in resources', () => {
  const e = errorsOf(
    validatePolicy([
      { identities: ['{{iot:device}}'], allow: [{ operations: ['mqtt:publish'], resources: ['a/{{iot:devce_id}}/b', 'ok/{{iot:device_id}}'] }] },
    ]),
  )
  assert.match(e.get('authorizations[0].identities[0]') ?? '', /unknown variable "\{\{iot:device\}\}"; supported: \{\{iot:identity\}\}, \{\{iot:device_id\}\}, \{\{iot:module_id\}\}, \{\{mqtt:client_id\}\}/)
  assert.match(e.get('authorizations[0].allow[0].resources[0]') ?? '', /unknown variable "\{\{iot:devce_id\}\}"/)
  assert.equal(e.has('authorizations[0].allow[0].resources[1]'), false)
  assert.equal(e.size, 2)
})

test('invalid filters a/#/b and a+ (and the empty filter)', () => {
  const e = errorsOf(validatePolicy([{ identities: ['x'], deny: [{ operations: ['mqtt:subscribe'], resources: ['a/#/b', 'a+', '', 'fine/+/#'] }] }]))
  assert.equal(e.get('authorizations[0].deny[0].resources[0]'), 'invalid topic filter "a/#/b": # must be the last level of a filter (e.g. "a/#", not "a/#/b")')
  assert.equal(e.get('authorizations[0].deny[0].resources[1]'), 'invalid topic filter "a+": + must occupy a whole level (e.g. "a/+", not "a+")')
  assert.match(e.get('authorizations[0].deny[0].resources[2]') ?? '', /must not be empty; use "#" for every topic/)
  assert.equal(e.size, 3)
})

test('missing and empty identities', () => {
  const e = errorsOf(validatePolicy([{ allow: [connect] }, { identities: [], allow: [connect] }, { identities: ['ok', ''], allow: [connect] }, { identities: 'x', allow: [connect] }]))
  assert.match(e.get('authorizations[0].identities') ?? '', /identities is missing; list the client ids/)
  assert.match(e.get('authorizations[1].identities') ?? '', /identities is empty/)
  assert.match(e.get('authorizations[2].identities[1]') ?? '', /identity is empty/)
  assert.match(e.get('authorizations[3].identities') ?? '', /must be an array/)
})

test('empty statement (no allow or deny rules)', () => {
  const e = errorsOf(validatePolicy([{ identities: ['a'] }, { identities: ['b'], allow: [], deny: [] }]))
  assert.match(e.get('authorizations[0]') ?? '', /^empty statement: .*add a rule/)
  assert.match(e.get('authorizations[1]') ?? '', /^empty statement/)
})

test('rules: no operations, publish without resources, resources on connect-only (warning), unknown keys', () => {
  const issues = validatePolicy([
    {
      identities: ['a'],
      alow: [connect],
      allow: [{ operations: [] }, { operations: ['mqtt:publish'] }, { operations: ['mqtt:connect'], resources: ['x'] }, { operations: ['mqtt:subscribe'], resource: ['x'] }],
    },
  ])
  const e = errorsOf(issues)
  assert.match(e.get('authorizations[0].alow') ?? '', /unknown property "alow"; a statement has only: identities, allow, deny, description/)
  assert.match(e.get('authorizations[0].allow[0].operations') ?? '', /operations is empty; list some of: mqtt:connect/)
  assert.match(e.get('authorizations[0].allow[1].resources') ?? '', /mqtt:publish need resources/)
  assert.match(e.get('authorizations[0].allow[3].resource') ?? '', /unknown property "resource"/)
  assert.match(e.get('authorizations[0].allow[3].resources') ?? '', /mqtt:subscribe need resources/)
  const w = issues.filter((i) => i.severity === 'warning')
  assert.deepEqual(w.map((i) => i.path), ['authorizations[0].allow[2].resources'])
  assert.match(w[0].message, /ignored for mqtt:connect/)
})

test('allowing a $ topic is a warning (it can never take effect)', () => {
  const issues = validatePolicy([{ identities: ['a'], allow: [{ operations: ['mqtt:subscribe'], resources: ['$SYS/#'] }] }])
  assert.deepEqual(issues.map((i) => [i.path, i.severity]), [['authorizations[0].allow[0].resources[0]', 'warning']])
})

test('mixed text and variables in an identity is an error', () => {
  const e = errorsOf(validatePolicy([{ identities: ['dev-{{iot:device_id}}'], allow: [connect] }]))
  assert.match(e.get('authorizations[0].identities[0]') ?? '', /must be the whole identity/)
})

test('schemaVersion "1.1" is an error at path schemaVersion; 1.2 and later 1.x are fine', () => {
  const issues = validateEdgeHubDesired({ schemaVersion: '1.1', mqttBroker: { authorizations: [] } })
  assert.deepEqual(issues.map((i) => i.path), ['schemaVersion'])
  assert.match(issues[0].message, /schemaVersion "1.1" is not supported; use "1.2"/)
  for (const v of ['1.2', '1.3', '1.10', '1.2.1']) assert.deepEqual(validateEdgeHubDesired({ schemaVersion: v }), [], v)
  for (const v of ['1.0', '2.0', '1', '12', 'latest']) assert.equal(validateEdgeHubDesired({ schemaVersion: v }).length, 1, v)
  assert.match(validateEdgeHubDesired({ schemaVersion: 1.2 })[0].message, /must be a string/)
  assert.match(validateEdgeHubDesired({ mqttBroker: {} })[0].message, /schemaVersion is missing/)
})

test('all errors are collected, not just the first', () => {
  const issues = validatePolicy([
    { identities: [], allow: [{ operations: ['mqtt:pub'], resources: ['a/#/b'] }] },
    { identities: ['{{nope}}'] },
    'not a statement',
  ])
  assert.deepEqual(
    issues.map((i) => i.path),
    ['authorizations[0].identities', 'authorizations[0].allow[0].operations[0]', 'authorizations[0].allow[0].resources[0]', 'authorizations[1].identities[0]', 'authorizations[1]', 'authorizations[2]'],
  )
  const notArray = validatePolicy({})
  assert.deepEqual(notArray.map((i) => i.path), ['authorizations'])
  assert.match(notArray[0].message, /must be an array of statements/)
})

test('compilePolicy throws InvalidDocumentError (exit 2) with the issues', () => {
  try {
    compilePolicy([{ identities: ['c'], allow: [{ operations: ['mqtt:pub'] }] }])
    assert.fail('should throw')
  } catch (err) {
    assert.ok(err instanceof InvalidDocumentError)
    assert.equal(err.exitCode, 2)
    assert.deepEqual(err.issues[0], {
      path: 'authorizations[0].allow[0].operations[0]',
      message: 'unknown operation "mqtt:pub"; supported: mqtt:connect, mqtt:publish, mqtt:subscribe',
    })
    assert.match(err.message, /authorizations\[0\]\.allow\[0\]\.operations\[0\]/)
  }
})

test('lenient JSON: trailing commas and comments pass; syntax errors give line and column', () => {
  assert.deepEqual(parseLenientJson('{"a": [1, 2,], // c\n "b": {"c": 1,},}'), { a: [1, 2], b: { c: 1 } })
  try {
    parseLenientJson('{\n  "a": 1\n  "b": 2\n}')
    assert.fail('should throw')
  } catch (err) {
    assert.ok(err instanceof InvalidDocumentError)
    assert.equal(err.exitCode, 2)
    assert.equal(err.issues[0].path, 'line 3, column 3')
    assert.match(err.issues[0].message, /CommaExpected/)
  }
  assert.throws(() => parseLenientJson('   '), InvalidDocumentError)
  // "__proto__" stays a plain key
  const v = parseLenientJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>
  assert.equal(Object.getPrototypeOf(v), Object.prototype)
  assert.deepEqual(Object.keys(v), ['__proto__'])
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
})
