// The authorization pipeline's steps as tables: identity × operation × topic × policy → verdict,
// including publishes nobody owns (aedes' `client = null` for a will left by a crashed broker).
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { decideForward, decidePublish, decideSubscribe, privateTopic, type PublishOrigin } from '../../src/broker/pipeline.js'
import type { Actor } from '../../src/broker/session.js'
import { compilePolicy, identityFromClientId, type AuthorizationStatement } from '../../src/policy/index.js'

const LIMITS = { maxMessageSize: 256 * 1024 }

/** d1, d2 and the edge device may connect; d1 may publish/subscribe `a/#`; nobody else may do anything. */
const POLICY: AuthorizationStatement[] = [
  { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] },
  { identities: ['d1'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['a/#'] }] },
  { identities: ['d2'], allow: [{ operations: ['mqtt:subscribe'], resources: ['devices/+/messages/events/#'] }] },
]
const compiled = compilePolicy(POLICY)

function actor(clientId: string, actsFor?: string[]): Actor {
  const identity = identityFromClientId(clientId)
  return { identity, authz: compiled.forIdentity(identity), ...(actsFor ? { actsFor: new Set(actsFor) } : {}) }
}

type PubRow = [who: string | null, origin: PublishOrigin, topic: string, qos: number, bytes: number, want: string, step?: string]

test('publish: session → size → iothub → policy, one verdict per row', () => {
  const rows: PubRow[] = [
    // Nobody owns it: never trusted, whatever the topic (orphaned will of a vanished identity).
    [null, 'will', 'a/x', 1, 10, 'deny', 'session'],
    [null, 'will', '$iothub/methods/POST/reboot/?$rid=1', 1, 10, 'deny', 'session'],
    [null, 'will', 'devices/d2/messages/devicebound/x', 1, 10, 'deny', 'session'],
    // Size before anything else that reads the message.
    ['d1', 'client', 'a/x', 1, LIMITS.maxMessageSize + 1, 'deny', 'size'],
    ['d1', 'client', 'a/x', 1, LIMITS.maxMessageSize, 'allow', 'policy'],
    // Topics only the hub publishes, from any origin.
    ['d1', 'client', '$iothub/methods/POST/reboot/?$rid=1', 1, 2, 'deny', 'iothub'],
    ['d1', 'will', '$iothub/twin/PATCH/properties/desired/?$version=999', 1, 2, 'deny', 'iothub'],
    ['d1', 'client', 'devices/d2/messages/devicebound/x', 1, 2, 'deny', 'iothub'],
    ['d1', 'client', 'devices/d1/messages/devicebound/x', 1, 2, 'deny', 'iothub'],
    ['d1', 'client', 'devices/e/modules/m/inputs/in1/', 1, 2, 'deny', 'iothub'],
    ['d1', 'client', '$iothub/twin/res/200/?$rid=1', 0, 2, 'deny', 'iothub'],
    ['d1', 'client', '$edgemq/d2/$iothub/twin/res/200/?$rid=1', 0, 2, 'deny', 'iothub'],
    ['d1', 'client', '$iothub/twin/nonsense', 0, 2, 'deny', 'iothub'],
    ['d1', 'client', 'devices/d1/messages/events/', 2, 2, 'deny', 'iothub'],
    // Requests the hub answers: only from a live client, never from a will or the bridge.
    ['d1', 'client', '$iothub/twin/GET/?$rid=1', 0, 0, 'answered', 'iothub'],
    ['d1', 'client', '$iothub/twin/PATCH/properties/reported/?$rid=2', 0, 2, 'answered', 'iothub'],
    ['d1', 'client', '$iothub/methods/res/200/?$rid=3', 0, 2, 'answered', 'iothub'],
    ['d1', 'will', '$iothub/twin/GET/?$rid=1', 0, 0, 'deny', 'iothub'],
    ['d1', 'bridge', '$iothub/methods/res/200/?$rid=3', 0, 2, 'deny', 'iothub'],
    // Telemetry: own (built-in allow), a child's through its edge device (answered), another's (policy).
    ['d1', 'client', 'devices/d1/messages/events/', 1, 2, 'allow', 'policy'],
    ['d1', 'will', 'devices/d1/messages/events/', 1, 2, 'allow', 'policy'],
    ['d1', 'client', 'devices/d2/messages/events/', 1, 2, 'deny', 'policy'],
    ['edge', 'client', 'devices/child/messages/events/', 1, 2, 'answered', 'iothub'],
    ['edge', 'client', 'devices/stranger/messages/events/', 1, 2, 'deny', 'policy'],
    // User topics: the policy decides; `$` topics are never a user's.
    ['d1', 'client', 'a/b/c', 0, 2, 'allow', 'policy'],
    ['d1', 'will', 'a/b', 1, 2, 'allow', 'policy'],
    ['d1', 'client', 'b/c', 0, 2, 'deny', 'policy'],
    ['d2', 'client', 'a/b', 0, 2, 'deny', 'policy'],
    ['d1', 'client', '$SYS/x', 0, 2, 'deny', 'policy'],
    // Bridged in from the parent (as the edge device): user topics by the bridge rule; IoT Hub and `$` topics never by default.
    ['edge', 'bridge', 'alerts/1', 1, 2, 'allow', 'policy'],
    ['edge', 'bridge', 'devices/d1/messages/devicebound/x', 1, 2, 'deny', 'iothub'],
    ['edge', 'bridge', '$iothub/methods/POST/reboot/?$rid=1', 1, 2, 'deny', 'iothub'],
    ['edge', 'bridge', 'devices/d1/messages/events/', 1, 2, 'deny', 'policy'],
    ['edge', 'bridge', '$SYS/x', 0, 2, 'deny', 'policy'],
  ]
  for (const [who, origin, topic, qos, bytes, want, step] of rows) {
    const a = who === null ? undefined : actor(who, who === 'edge' ? ['child'] : undefined)
    const v = decidePublish({ actor: a, origin, topic, qos, payloadBytes: bytes }, LIMITS)
    const label = `${who ?? 'null'} ${origin} ${topic} q${qos} ${bytes}B`
    assert.equal(v.kind, want, `${label}: ${v.kind === 'deny' ? v.reason : v.kind}`)
    if (step) assert.equal(v.step, step, label)
    if (v.kind === 'deny') assert.ok(v.reason.length > 10, `${label}: a denial says why`)
  }
})

test('publish: own telemetry is tagged for routing; a policy-less actor is refused at the session step', () => {
  const v = decidePublish({ actor: actor('d1'), origin: 'client', topic: 'devices/d1/messages/events/k=v', qos: 1, payloadBytes: 3 }, LIMITS)
  assert.equal(v.kind, 'allow')
  assert.equal(v.telemetry?.deviceId, 'd1')
  assert.deepEqual(v.telemetry?.properties, { k: 'v' })
  const none = decidePublish({ actor: { identity: { clientId: 'd1', deviceId: 'd1' }, authz: undefined }, origin: 'client', topic: 'a/x', qos: 0, payloadBytes: 1 }, LIMITS)
  assert.deepEqual([none.kind, none.step], ['deny', 'session'])
})

type SubRow = [who: string | null, filter: string, qos: number, want: string, rewrittenTo?: string, qosOut?: number]

test('subscribe: granted, refused, or rewritten into the private namespace', () => {
  const rows: SubRow[] = [
    [null, 'a/#', 0, 'deny'],
    ['d1', 'a/#', 1, 'allow'],
    ['d1', '#', 0, 'deny'],
    ['d1', 'devices/+/messages/devicebound/#', 1, 'deny'],
    ['d1', '$SYS/#', 0, 'deny'],
    ['d1', '$edgemq/d1/$iothub/twin/res/#', 0, 'deny'],
    ['d1', '$edgemq/#', 0, 'deny'],
    ['d1', '$iothub/twin/res/#', 1, 'rewritten', privateTopic('d1', '$iothub/twin/res/#'), 1],
    ['d1', '$iothub/methods/POST/#', 2, 'rewritten', privateTopic('d1', '$iothub/methods/POST/#'), 1],
    ['d1/m', '$iothub/twin/PATCH/properties/desired/#', 0, 'rewritten', privateTopic('d1/m', '$iothub/twin/PATCH/properties/desired/#'), 0],
    ['d1', 'devices/d1/messages/devicebound/#', 2, 'rewritten', 'devices/d1/messages/devicebound/#', 1],
    ['d1', 'devices/d1/messages/devicebound/#', 1, 'allow'],
    ['d1', 'devices/d2/messages/devicebound/#', 1, 'deny'],
    ['d2', 'devices/+/messages/events/#', 1, 'allow'],
    ['d2', 'devices/#', 1, 'deny'],
  ]
  for (const [who, filter, qos, want, to, qosOut] of rows) {
    const v = decideSubscribe({ actor: who === null ? undefined : actor(who), filter, qos })
    const label = `${who ?? 'null'} ${filter}`
    assert.equal(v.kind, want, `${label}: ${v.kind === 'deny' ? v.reason : v.kind}`)
    if (v.kind === 'rewritten') assert.deepEqual(v.value, { topic: to, qos: qosOut }, label)
  }
})

type FwdRow = [who: string | null, clientId: string, topic: string, want: string, to?: string]

test('delivery: private responses reach their owner only; no other $ topic is ever delivered; policy re-checked', () => {
  const rows: FwdRow[] = [
    ['d1', 'd1', privateTopic('d1', '$iothub/twin/res/200/?$rid=1'), 'rewritten', '$iothub/twin/res/200/?$rid=1'],
    ['d1', 'd1', privateTopic('d2', '$iothub/twin/res/200/?$rid=1'), 'deny'],
    // A raw `$iothub/…` message (what a forged will would have been) never reaches a client.
    ['d1', 'd1', '$iothub/twin/PATCH/properties/desired/?$version=999', 'deny'],
    ['d1', 'd1', '$iothub/methods/POST/reboot/?$rid=1', 'deny'],
    ['d1', 'd1', '$SYS/broker/x', 'deny'],
    ['d1', 'd1', 'a/b', 'allow'],
    ['d1', 'd1', 'b', 'deny'],
    [null, 'd1', 'a/b', 'deny'],
    ['d1', 'd1', 'devices/d1/messages/devicebound/%24.mid=1', 'allow'],
  ]
  for (const [who, clientId, topic, want, to] of rows) {
    const v = decideForward(who === null ? undefined : actor(who), clientId, topic)
    assert.equal(v.kind, want, `${who} ${topic}`)
    if (v.kind === 'rewritten') assert.equal(v.value, to)
  }
})
