// The $edgeHub desired document: shapes, validation, merge-patch, typed view.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { InvalidDocumentError } from '../../src/errors.js'
import {
  DEFAULT_AUTHORIZATIONS,
  loadEdgeHubConfig,
  loadPolicyDocument,
  mergeDesiredPatch,
  parseEdgeHubDocument,
  toEdgeHubConfig,
  validateEdgeHubDesired,
  type EdgeHubIssue,
} from '../../src/edgehub/index.js'
import { compilePolicy, identityFromClientId, type JsonObject } from '../../src/policy/index.js'
import { SEED_FIXTURES } from '../helpers/paths.js'

const fixture = (name: string): string => readFileSync(path.resolve(SEED_FIXTURES, name), 'utf8')

function paths(issues: EdgeHubIssue[], severity: 'error' | 'warning' = 'error'): string[] {
  return issues.filter((i) => i.severity === severity).map((i) => i.path)
}

test('both shapes parse to the same desired object', () => {
  const full = parseEdgeHubDocument(fixture('seed-policy-rogue-client.json'))
  const bare = parseEdgeHubDocument(JSON.stringify(full))
  assert.deepEqual(bare, full)
  assert.equal(full.schemaVersion, '1.2')
  assert.deepEqual(parseEdgeHubDocument(fixture('seed-bridge.json')).schemaVersion, '1.2')
})

test('bad wrappers and non-objects are rejected with a path', () => {
  const cases: Array<[string, string]> = [
    ['[1]', ''],
    ['{"$edgeHub": {}}', '$edgeHub["properties.desired"]'],
    ['{"$edgeHub": {"properties.desired": 3}}', '$edgeHub["properties.desired"]'],
    ['{"$edgeHub": {"properties.desired": {}}, "other": 1}', 'other'],
    ['{"$edgeHub": {"properties.desired": {}, "properties.reported": {}}}', '$edgeHub["properties.reported"]'],
  ]
  for (const [text, p] of cases) {
    try {
      parseEdgeHubDocument(text)
      assert.fail(`accepted ${text}`)
    } catch (err) {
      assert.ok(err instanceof InvalidDocumentError, text)
      assert.equal(err.exitCode, 2)
      assert.equal(err.issues[0].path, p, text)
    }
  }
  assert.throws(() => parseEdgeHubDocument('{"schemaVersion": "1.2",,}'), (e: unknown) => e instanceof InvalidDocumentError && /line 1, column/.test(e.issues[0].path))
})

test('empty document is valid (all defaults); any content needs schemaVersion; twin metadata is ignored', () => {
  assert.deepEqual(validateEdgeHubDesired({}), [])
  assert.deepEqual(validateEdgeHubDesired({ $version: 4, $metadata: {} }), [])
  assert.deepEqual(paths(validateEdgeHubDesired({ routes: {} })), ['schemaVersion'])
  const c = toEdgeHubConfig({})
  assert.deepEqual(c, { schemaVersion: undefined, routes: {}, storeAndForwardConfiguration: { timeToLiveSecs: 7200 }, mqttBroker: { authorizations: undefined, bridges: [] } })
})

test('routes must be strings; timeToLiveSecs a non-negative integer', () => {
  const issues = validateEdgeHubDesired({
    schemaVersion: '1.2',
    routes: { ok: 'FROM /messages/* INTO $upstream', obj: { route: 'x' }, empty: ' ', 'with space': 5 },
    storeAndForwardConfiguration: { timeToLiveSecs: -1 },
  })
  assert.deepEqual(paths(issues), ['routes.obj', 'routes.empty', 'routes["with space"]', 'storeAndForwardConfiguration.timeToLiveSecs'])
  for (const bad of [1.5, '7200', null]) {
    assert.deepEqual(paths(validateEdgeHubDesired({ schemaVersion: '1.2', storeAndForwardConfiguration: { timeToLiveSecs: bad } })), ['storeAndForwardConfiguration.timeToLiveSecs'], String(bad))
  }
  assert.deepEqual(validateEdgeHubDesired({ schemaVersion: '1.2', storeAndForwardConfiguration: { timeToLiveSecs: 0 } }), [])
  assert.deepEqual(paths(validateEdgeHubDesired({ schemaVersion: '1.2', routes: [] })), ['routes'])
  assert.equal(toEdgeHubConfig({ schemaVersion: '1.3', storeAndForwardConfiguration: { timeToLiveSecs: 60 } }).storeAndForwardConfiguration.timeToLiveSecs, 60)
})

test('bridges: endpoint $upstream, direction in|out|both, topic filter, literal prefixes', () => {
  const issues = validateEdgeHubDesired({
    schemaVersion: '1.2',
    mqttBroker: {
      bridges: [
        {
          endpoint: '$downstream',
          settings: [
            { direction: 'sideways', topic: 'a/#/b' },
            { direction: 'out', inPrefix: 'a/+', outPrefix: 3 },
            { direction: 'both', topic: '#', extra: true },
            'nope',
          ],
        },
        { settings: [] },
        { endpoint: '$upstream', settings: [{ direction: 'in', topic: '' }] },
        { endpoint: '$upstream', settings: 'x' },
      ],
    },
  })
  assert.deepEqual(paths(issues), [
    'mqttBroker.bridges[0].endpoint',
    'mqttBroker.bridges[0].settings[0].direction',
    'mqttBroker.bridges[0].settings[0].topic',
    'mqttBroker.bridges[0].settings[1].topic',
    'mqttBroker.bridges[0].settings[1].inPrefix',
    'mqttBroker.bridges[0].settings[1].outPrefix',
    'mqttBroker.bridges[0].settings[2].extra',
    'mqttBroker.bridges[0].settings[3]',
    'mqttBroker.bridges[1].endpoint',
    'mqttBroker.bridges[3].endpoint',
    'mqttBroker.bridges[3].settings',
  ])
  assert.deepEqual(paths(issues, 'warning'), ['mqttBroker.bridges[1].settings'])
  const msg = new Map(issues.map((i) => [i.path, i.message]))
  assert.match(msg.get('mqttBroker.bridges[0].endpoint') ?? '', /must be "\$upstream"/)
  assert.match(msg.get('mqttBroker.bridges[0].settings[0].direction') ?? '', /"in", "out" or "both"/)
  assert.match(msg.get('mqttBroker.bridges[3].endpoint') ?? '', /second bridge/)
})

test('unknown top-level and mqttBroker properties are warnings, not errors', () => {
  const issues = validateEdgeHubDesired({ schemaVersion: '1.2', futureThing: 1, mqttBroker: { authorizations: [], later: {} } })
  assert.deepEqual(paths(issues), [])
  assert.deepEqual(paths(issues, 'warning'), ['futureThing', 'mqttBroker.later'])
})

test('policy errors inside the document carry mqttBroker.authorizations paths; toEdgeHubConfig throws them all', () => {
  const desired = {
    schemaVersion: '1.1',
    mqttBroker: { authorizations: [{ identities: ['x'], allow: [{ operations: ['mqtt:pub'] }] }] },
  }
  try {
    toEdgeHubConfig(desired)
    assert.fail('should throw')
  } catch (err) {
    assert.ok(err instanceof InvalidDocumentError)
    assert.equal(err.exitCode, 2)
    assert.deepEqual(err.issues.map((i) => i.path), ['schemaVersion', 'mqttBroker.authorizations[0].allow[0].operations[0]'])
  }
})

test('mergeDesiredPatch: null deletes, objects merge, arrays replace, inputs untouched', () => {
  const current: JsonObject = {
    schemaVersion: '1.2',
    routes: { r1: 'FROM /* INTO $upstream', r2: 'FROM /messages/* INTO $upstream' },
    mqttBroker: { authorizations: [{ identities: ['a'], allow: [{ operations: ['mqtt:connect'] }] }], bridges: [] },
  }
  const snapshot = structuredClone(current)
  const patch: JsonObject = {
    routes: { r1: null, r3: 'FROM /messages/modules/m/* INTO $upstream' },
    mqttBroker: { authorizations: [{ identities: ['b'], allow: [{ operations: ['mqtt:connect'] }] }] },
    storeAndForwardConfiguration: { timeToLiveSecs: 10, gone: null },
    notThere: null,
  }
  const merged = mergeDesiredPatch(current, patch)
  assert.deepEqual(merged, {
    schemaVersion: '1.2',
    routes: { r2: 'FROM /messages/* INTO $upstream', r3: 'FROM /messages/modules/m/* INTO $upstream' },
    mqttBroker: { authorizations: [{ identities: ['b'], allow: [{ operations: ['mqtt:connect'] }] }], bridges: [] },
    storeAndForwardConfiguration: { timeToLiveSecs: 10 },
  })
  assert.deepEqual(current, snapshot)
  // arrays are copied verbatim (nulls inside arrays are values, not deletions), never aliased
  const withArray = mergeDesiredPatch({}, { list: [null, { a: null }] })
  assert.deepEqual(withArray, { list: [null, { a: null }] })
  // a scalar replaced by an object, and an object replaced by a scalar
  assert.deepEqual(mergeDesiredPatch({ a: 1, b: { c: 1 } }, { a: { x: 1 }, b: 2 }), { a: { x: 1 }, b: 2 })
  // "__proto__" is an ordinary key
  const p = parseEdgeHubDocument('{"__proto__": {"x": 1}}')
  const m = mergeDesiredPatch({}, p)
  assert.equal(Object.getPrototypeOf(m), Object.prototype)
  assert.deepEqual(Object.keys(m), ['__proto__'])
})

test('merged seed documents: rogue-client policy then a patch that allows rogue_client', () => {
  const base = parseEdgeHubDocument(fixture('seed-policy-rogue-client.json'))
  const patch = parseEdgeHubDocument('{"mqttBroker": {"authorizations": [{"identities": ["{{iot:identity}}"], "allow": [{"operations": ["mqtt:connect"]}]}]}}')
  const merged = mergeDesiredPatch(base, patch)
  assert.deepEqual(validateEdgeHubDesired(merged), [])
  const cfg = toEdgeHubConfig(merged)
  assert.deepEqual(cfg.routes, { Route1: 'FROM /messages/* INTO $upstream' })
  const policy = compilePolicy(cfg.mqttBroker.authorizations ?? [])
  assert.equal(policy.decide(identityFromClientId('rogue_client'), 'connect').decision, 'allow')
})

test('loadPolicyDocument accepts either $edgeHub shape or a bare authorizations array', () => {
  assert.equal(loadPolicyDocument(fixture('seed-policy-pubsub.json')).statements.length, 3)
  const bare = loadPolicyDocument('[{"identities": ["a"], "allow": [{"operations": ["mqtt:connect"]},]},]')
  assert.equal(bare.decide(identityFromClientId('a'), 'connect').decision, 'allow')
  const wrapped = loadPolicyDocument('{"authorizations": [{"identities": ["a"], "allow": [{"operations": ["mqtt:connect"]}]}]}')
  assert.equal(wrapped.decide(identityFromClientId('a'), 'connect').decision, 'allow')
  assert.throws(() => loadPolicyDocument('{"authorizations": [{"identities": ["a"]}]}'), (e: unknown) => e instanceof InvalidDocumentError && e.issues[0].path === 'authorizations[0]')
  assert.throws(
    () => loadPolicyDocument('{"schemaVersion": "1.2", "mqttBroker": {"authorizations": [{"identities": ["a"]}]}}'),
    (e: unknown) => e instanceof InvalidDocumentError && e.issues[0].path === 'mqttBroker.authorizations[0]',
  )
  assert.equal(compilePolicy(DEFAULT_AUTHORIZATIONS).decide(identityFromClientId('x'), 'connect').decision, 'allow')
})

test('the seed bridge fixture loads as a bare desired object', () => {
  const cfg = loadEdgeHubConfig(fixture('seed-bridge.json'))
  assert.equal(cfg.mqttBroker.bridges[0].settings[1].outPrefix, '/remote/messages')
})
