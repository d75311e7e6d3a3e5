// The seed's three policy samples, loaded verbatim from ../shared/fixtures (PROTOCOL.md §3 "Fixtures").
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { loadEdgeHubConfig, loadPolicyDocument, parseEdgeHubDocument, validateEdgeHubDesired } from '../../src/edgehub/index.js'
import { compilePolicy, identityFromClientId, type CompiledPolicy } from '../../src/policy/index.js'
import { SEED_FIXTURES } from '../helpers/paths.js'

const fixture = (name: string): string => readFileSync(path.resolve(SEED_FIXTURES, name), 'utf8')
const id = identityFromClientId

function load(name: string): CompiledPolicy {
  const config = loadEdgeHubConfig(fixture(name))
  assert.ok(config.mqttBroker.authorizations, `${name} has authorizations`)
  return compilePolicy(config.mqttBroker.authorizations)
}

test('seed fixtures parse, validate without errors and compile', () => {
  for (const name of ['seed-policy-default.json', 'seed-policy-pubsub.json', 'seed-policy-rogue-client.json']) {
    const desired = parseEdgeHubDocument(fixture(name))
    assert.equal(desired.schemaVersion, '1.2', name)
    assert.deepEqual(validateEdgeHubDesired(desired), [], name)
    assert.ok(load(name).statements.length > 0)
    assert.ok(loadPolicyDocument(fixture(name)).statements.length > 0)
  }
})

test('the pubsub fixture really has trailing commas (so the lenient parser is exercised)', () => {
  const text = fixture('seed-policy-pubsub.json')
  assert.match(text, /,\s*\}/)
  assert.throws(() => JSON.parse(text))
})

test('rogue-client policy: rogue_client cannot connect, every other identity can', () => {
  const p = load('seed-policy-rogue-client.json')
  const rogue = p.decide(id('rogue_client'), 'connect')
  assert.equal(rogue.decision, 'deny')
  assert.deepEqual(rogue.statement, { index: 0, description: 'rogue_client is not allowed to connect' })
  assert.equal(rogue.reason, 'statement 0 (rogue_client is not allowed to connect) denies mqtt:connect')
  for (const c of ['sensor_1', 'dev2', 'edge/mod1']) {
    const d = p.decide(id(c), 'connect')
    assert.equal(d.decision, 'allow', c)
    assert.deepEqual(d.statement, { index: 1, description: 'Allow all Azure IoT identities to connect' })
  }
  assert.equal(p.forIdentity(id('rogue_client')).canConnect(), false)
  assert.equal(p.forIdentity(id('sensor_1')).canConnect(), true)
})

test('rogue-client policy: sensor_1 may publish events/alerts and nothing else', () => {
  const p = load('seed-policy-rogue-client.json')
  const allowed = p.decide(id('sensor_1'), 'publish', 'events/alerts')
  assert.equal(allowed.decision, 'allow')
  assert.deepEqual(allowed.statement, { index: 2, description: 'Allow sensor_1 to publish alerts' })
  for (const t of ['events/alerts/x', 'events', 'events/other', 'alerts', 'other', '$SYS/x']) {
    assert.equal(p.decide(id('sensor_1'), 'publish', t).decision, 'deny', t)
  }
  for (const f of ['events/alerts', 'events/#']) assert.equal(p.decide(id('sensor_1'), 'subscribe', f).decision, 'deny', f)
  assert.equal(p.decide(id('sensor_2'), 'publish', 'events/alerts').decision, 'deny')
  const d = p.decide(id('sensor_1'), 'publish', 'other')
  assert.equal(d.statement, null)
  assert.match(d.reason, /default deny/)
})

test('pubsub policy: sub_client subscribes test_topic, pub_client publishes test_topic but not other', () => {
  const p = load('seed-policy-pubsub.json')
  assert.equal(p.decide(id('sub_client'), 'connect').decision, 'allow')
  assert.equal(p.decide(id('pub_client'), 'connect').decision, 'allow')
  assert.equal(p.decide(id('sub_client'), 'subscribe', 'test_topic').decision, 'allow')
  assert.equal(p.decide(id('sub_client'), 'publish', 'test_topic').decision, 'deny')
  assert.equal(p.decide(id('sub_client'), 'subscribe', 'test_topic/#').decision, 'deny')
  assert.equal(p.decide(id('sub_client'), 'subscribe', '#').decision, 'deny')
  assert.equal(p.decide(id('pub_client'), 'publish', 'test_topic').decision, 'allow')
  assert.equal(p.decide(id('pub_client'), 'publish', 'other').decision, 'deny')
  assert.equal(p.decide(id('pub_client'), 'subscribe', 'test_topic').decision, 'deny')
  const view = p.forIdentity(id('pub_client'))
  assert.equal(view.canPublish('test_topic'), true)
  assert.equal(view.canPublish('other'), false)
})

test('default policy: every identity connects, nothing else without rules except own IoT Hub topics', () => {
  const p = load('seed-policy-default.json')
  assert.equal(p.decide(id('anyone'), 'connect').decision, 'allow')
  assert.equal(p.decide(id('anyone'), 'publish', 'a/b').decision, 'deny')
  assert.equal(p.decide(id('anyone'), 'publish', 'devices/anyone/messages/events/').decision, 'allow')
})

test('seed bridge fixture (bare desired object) validates and yields a typed view', () => {
  const config = loadEdgeHubConfig(fixture('seed-bridge.json'))
  assert.equal(config.mqttBroker.authorizations, undefined)
  assert.deepEqual(config.mqttBroker.bridges, [
    {
      endpoint: '$upstream',
      settings: [
        { direction: 'in', topic: 'alerts/#', inPrefix: '', outPrefix: '' },
        { direction: 'out', topic: '', inPrefix: '/local/telemetry', outPrefix: '/remote/messages' },
      ],
    },
  ])
  assert.equal(config.storeAndForwardConfiguration.timeToLiveSecs, 7200)
})

test('rogue-client fixture routes and store-and-forward come through the typed view', () => {
  const config = loadEdgeHubConfig(fixture('seed-policy-rogue-client.json'))
  assert.deepEqual(config.routes, { Route1: 'FROM /messages/* INTO $upstream' })
  assert.equal(config.storeAndForwardConfiguration.timeToLiveSecs, 7200)
  assert.equal(config.schemaVersion, '1.2')
})
