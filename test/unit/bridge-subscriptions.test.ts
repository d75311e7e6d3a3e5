// Issue 21 item 3: bridge `in` rules that produce the same remote filter (`both # l/→r/` and
// `in # l/l/→r/`) made one SUBSCRIBE with a repeated filter; the parent's SUBACK had fewer codes,
// MQTT.js called it a protocol error and the bridge reconnected every ~0.45 s, re-sending its queue
// each time. Now: one remote filter per remote topic (a filter another one covers is not
// subscribed either), every message fanned out locally to each rule that matches, and a refused
// filter or a SUBACK the bridge cannot use is logged once, without a reconnect loop.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'

import { connectedClient, liveSubscriptions } from '../../src/broker/aedes-internals.js'
import { startHub } from '../../src/emulator/index.js'
import { captureLog } from '../helpers/log-capture.js'
import { startFakeParent } from '../helpers/fake-parent.js'
import { deviceOf, hubPair, waitFor } from '../helpers/hub-pair.js'
import { collect, subscribeOk } from '../helpers/mqtt.js'

const count = (log: ReturnType<typeof captureLog>, msg: string) => log.lines.filter((l) => l.msg === msg).length

/** How long the absence of a reconnect loop is watched (the loop reconnected every ~0.45 s). */
const QUIET_MS = 3000

type Settings = Parameters<typeof hubPair>[1]['settings']

/** A linked pair with `settings` on the child's bridge, `watcher` on the parent and `local` on the child, once the bridge subscribed upstream. */
async function watchedPair(t: TestContext, settings: Settings) {
  const log = captureLog()
  const pair = await hubPair(t, { parentPolicy: 'allow-all', settings, parentDevices: ['watcher'], childDevices: ['local'], childLogger: log.logger })
  await log.waitFor(/bridge subscribed on \$upstream/)
  return { log, ...pair }
}

/** Every filter the bridge subscribed on $upstream, from its log. */
const subscribedFilters = (log: ReturnType<typeof captureLog>) => log.lines.filter((l) => l.msg === 'bridge subscribed on $upstream').flatMap((l) => l.filters as string[])

test('two rules with the same remote filter: one subscription, both rules get every message, no reconnect loop, no duplicates up', async (t) => {
  const { log, parent, child } = await watchedPair(t, [
    { direction: 'both', topic: '#', inPrefix: 'l/', outPrefix: 'r/' },
    { direction: 'in', topic: '#', inPrefix: 'l/l/', outPrefix: 'r/' },
  ])
  const watcher = await deviceOf(t, parent, 'watcher')
  await subscribeOk(watcher, 'r/#', 1)
  const local = await deviceOf(t, child, 'local')
  await subscribeOk(local, 'l/#', 1)

  // Down: r/x reaches the child once per rule.
  const down = collect(local, 2, { timeoutMs: 10_000 })
  await watcher.publishAsync('r/x', 'down', { qos: 1 })
  assert.deepEqual((await down).map((m) => `${m.topic} ${m.payload.toString()}`).sort(), ['l/l/x down', 'l/x down'])

  // Up: three messages, each once.
  const up: string[] = []
  watcher.on('message', (topic, payload) => {
    if (topic === 'r/y') up.push(payload.toString())
  })
  for (const p of ['u1', 'u2', 'u3']) await local.publishAsync('l/y', p, { qos: 1 })
  await waitFor('u1…u3 upstream', () => up.length >= 3)
  await new Promise((r) => setTimeout(r, QUIET_MS))
  assert.deepEqual(up, ['u1', 'u2', 'u3'], 'each message once, in order')
  assert.equal(count(log, 'bridge connected to $upstream'), 1, 'connected once: no reconnect loop')
  const subscribed = subscribedFilters(log)
  assert.deepEqual(subscribed, ['r/#'], 'one remote filter')
  assert.equal(child.broker.bridge.status().state, 'connected')
})

test('a remote filter another one covers is not subscribed; a message is fanned out to every rule that matches', async (t) => {
  const { log, parent, child } = await watchedPair(t, [
    { direction: 'in', topic: 'x/#', inPrefix: 'b', outPrefix: 'r' },
    { direction: 'in', topic: '#', inPrefix: 'a', outPrefix: 'r' },
    { direction: 'in', topic: 'x/+', inPrefix: 'c', outPrefix: 'r' },
  ])
  const subscribed = subscribedFilters(log)
  assert.deepEqual(subscribed, ['r/#'])
  const watcher = await deviceOf(t, parent, 'watcher')
  const local = await deviceOf(t, child, 'local')
  await subscribeOk(local, ['a/#', 'b/#', 'c/#'], 1)
  const got = collect(local, 4, { timeoutMs: 10_000 })
  await watcher.publishAsync('r/x/1', 'one', { qos: 1 })
  await watcher.publishAsync('r/z', 'two', { qos: 1 })
  assert.deepEqual((await got).map((m) => `${m.topic} ${m.payload.toString()}`).sort(), ['a/x/1 one', 'a/z two', 'b/x/1 one', 'c/x/1 one'])
})

test('a subscription the parent refuses is logged once, across reconnects, and shown in status; the bridge stays up', async (t) => {
  const log = captureLog()
  const { parent, child } = await hubPair(t, {
    parentPolicy: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['ok/#'] }] }],
    settings: [
      { direction: 'in', topic: 'ok/#' },
      { direction: 'in', topic: 'secret/#' },
    ],
    childLogger: log.logger,
  })
  await log.waitFor(/bridge subscription refused by \$upstream/)
  assert.deepEqual(child.broker.bridge.status().refusedFilters, ['secret/#'])
  assert.match(child.broker.bridge.status().lastError ?? '', /secret\/#/)
  // A reconnect (the parent drops the child edge device and lets it back) subscribes again: refused again, not logged again.
  const mark = log.mark()
  await parent.context.registry.updateDevice('child-edge', { status: 'disabled' })
  await waitFor('the bridge lost the parent', () => child.broker.bridge.status().state !== 'connected')
  await parent.context.registry.updateDevice('child-edge', { status: 'enabled' })
  await log.waitFor(/bridge connected to \$upstream/, { since: mark, timeoutMs: 20_000 })
  await log.waitFor(/bridge subscribed on \$upstream/, { since: mark })
  await new Promise((r) => setTimeout(r, 500))
  assert.equal(count(log, 'bridge subscription refused by $upstream'), 1, 'logged once')
  assert.deepEqual(child.broker.bridge.status().refusedFilters, ['secret/#'])
  assert.equal(child.broker.bridge.status().state, 'connected')
})

test('a SUBACK with fewer return codes than filters: logged once, that filter is not subscribed again, no reconnect loop', async (t) => {
  // No return code at all for `broken/#`; the others are granted.
  const fake = await startFakeParent((filters) => (filters.includes('broken/#') ? [] : filters.map(() => 1)))
  t.after(() => fake.close())
  const log = captureLog()
  const child = await startHub({ hubName: 'childhub', policy: 'allow-all', logger: log.logger })
  t.after(() => child.close())
  const upstream = { hostName: 'fakeparent.azure-devices.net', gatewayHostName: 'localhost', deviceId: 'child-edge', sharedAccessKey: Buffer.alloc(32, 1).toString('base64'), port: fake.port, caFile: fake.caFile }
  await child.context.store.updateHub((h) => ({ ...h, upstream }))
  Object.assign(child.context.hub, { upstream })
  await child.setEdgeHub({ mqttBroker: { bridges: [{ endpoint: '$upstream', settings: [{ direction: 'in', topic: 'fine/#' }, { direction: 'in', topic: 'broken/#' }] }] } })
  await log.waitFor(/could not use the SUBACK/)
  await new Promise((r) => setTimeout(r, QUIET_MS))
  assert.ok(fake.connections <= 2, `at most one reconnect, got ${fake.connections} connections`)
  assert.equal(count(log, 'bridge could not use the SUBACK of $upstream'), 1, 'logged once')
  assert.equal(fake.subscribes.filter((s) => s.includes('broken/#')).length, 1, 'the broken filter was not subscribed again')
  assert.equal(child.broker.bridge.status().state, 'connected')
  assert.deepEqual(child.broker.bridge.status().refusedFilters, ['broken/#'])
})

test('filters of earlier rules left in the parent\'s persistent session are unsubscribed on connect', async (t) => {
  const log = captureLog()
  const { parent, child } = await hubPair(t, {
    parentPolicy: 'allow-all',
    settings: [{ direction: 'in', topic: 'x/#', inPrefix: 'b', outPrefix: 'r' }],
    parentDevices: ['watcher'],
    childDevices: ['local'],
    childLogger: log.logger,
  })
  await log.waitFor(/bridge subscribed on \$upstream/)
  // The bridge goes away (no upstream) with r/x/# in its session on the parent; the rules change meanwhile.
  const upstream = child.context.hub.upstream
  await child.context.store.updateHub(({ upstream: _, ...h }) => h)
  await waitFor('the bridge disabled', () => child.broker.bridge.status().state === 'disabled')
  await child.setEdgeHub({ mqttBroker: { bridges: [{ endpoint: '$upstream', settings: [{ direction: 'in', topic: '#', inPrefix: 'a', outPrefix: 'r' }, { direction: 'in', topic: 'x/#', inPrefix: 'b', outPrefix: 'r' }] }] } })
  const mark = log.mark()
  await child.context.store.updateHub((h) => ({ ...h, upstream }))
  await log.waitFor(/bridge unsubscribed on \$upstream from filters of earlier rules/, { since: mark })
  await log.waitFor(/bridge subscribed on \$upstream/, { since: mark })
  const held = () => Object.keys(liveSubscriptions(connectedClient(parent.broker.aedes, 'child-edge')!)).filter((f) => !f.startsWith('$')).sort()
  await waitFor(`the parent holds only r/# for the child (holds ${held().join(', ')})`, () => held().join() === 'r/#')

  const watcher = await deviceOf(t, parent, 'watcher')
  const local = await deviceOf(t, child, 'local')
  await subscribeOk(local, ['a/#', 'b/#'], 1)
  const got: string[] = []
  local.on('message', (topic) => got.push(topic))
  const marker = collect(local, 1, { filter: (m) => m.topic === 'a/end', timeoutMs: 10_000 })
  await watcher.publishAsync('r/x/1', 'one', { qos: 1 })
  await watcher.publishAsync('r/end', 'end', { qos: 1 })
  await marker
  assert.deepEqual(got.sort(), ['a/end', 'a/x/1', 'b/x/1'], 'each rule once')
})
