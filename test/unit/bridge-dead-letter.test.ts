// Issue 21 item 2: one message the parent refuses must not block the bridge's queue. The parent
// denies `/remote/messages/secret/#` to the child edge device (and drops the connection on it, as
// IoT Hub does on MQTT 3.1.1); the child publishes ok1, secret/x, ok2…ok6. ok1…ok6 reach the
// parent in order within seconds, secret/x lands in the dead-letter store after its attempts,
// `retry` re-queues it (it arrives once the parent allows it), `purge` empties the store.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { MAX_ATTEMPTS } from '../../src/bridge/bridge.js'
import type { Hub, HubPolicy } from '../../src/emulator/index.js'
import { deviceOf, hubPair, waitFor } from '../helpers/hub-pair.js'
import { captureLog } from '../helpers/log-capture.js'
import { collect, subscribeOk } from '../helpers/mqtt.js'

// Reconnects from 50 ms instead of 0.5 s: the same attempts and order, without 15 s of real backoff.
const FAST_BACKOFF = { bridgeBackoffMs: 50 }
const OUT = [{ direction: 'out', topic: '', inPrefix: '/local/telemetry', outPrefix: '/remote/messages' }]

function parentPolicy(denySecret: boolean): HubPolicy {
  return [
    ...(denySecret ? [{ identities: ['child-edge'], deny: [{ operations: ['mqtt:publish'], resources: ['/remote/messages/secret/#'] }] }] : []),
    { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['/remote/messages/#'] }] },
  ]
}

async function setParentPolicy(parent: Hub, denySecret: boolean): Promise<void> {
  await parent.setEdgeHub({ schemaVersion: '1.2', mqttBroker: { authorizations: parentPolicy(denySecret) } } as never)
}

test('bridge out: a refused message is dead-lettered after its attempts and the queue moves on; retry re-queues, purge empties', async (t) => {
  const childLog = captureLog()
  const { parent, child } = await hubPair(t, { parentPolicy: parentPolicy(true), settings: OUT, parentDevices: ['watcher'], childDevices: ['local'], childSettings: FAST_BACKOFF, childLogger: childLog.logger })
  const watcher = await deviceOf(t, parent, 'watcher')
  await subscribeOk(watcher, '/remote/messages/#', 1)
  const local = await deviceOf(t, child, 'local')

  const started = Date.now()
  // Until ok6: a message in flight when the parent dropped the connection may arrive twice.
  const last = collect(watcher, 1, { filter: (m) => m.payload.toString() === 'ok6', timeoutMs: 20_000 })
  const seen: string[] = []
  const got: string[] = []
  watcher.on('message', (topic, payload) => {
    seen.push(`${topic} ${payload.toString()}`)
    if (topic === '/remote/messages/ok') got.push(payload.toString())
  })
  await local.publishAsync('/local/telemetry/ok', 'ok1', { qos: 1 })
  await local.publishAsync('/local/telemetry/secret/x', 'poison', { qos: 1 })
  for (let i = 2; i <= 6; i++) await local.publishAsync('/local/telemetry/ok', `ok${i}`, { qos: 1 })

  await last
  const secs = (Date.now() - started) / 1000
  console.log(`# dead-letter: ok1…ok6 arrived in ${secs.toFixed(1)} s as ${got.join(',')}`)
  // A message the parent took but whose PUBACK the dropped connection lost is sent again (at
  // least once): duplicates may occur, the order of first arrivals must hold.
  assert.deepEqual([...new Set(got)], ['ok1', 'ok2', 'ok3', 'ok4', 'ok5', 'ok6'], `in order: ${got.join(',')}`)
  assert.ok(secs < 15, `ok1…ok6 arrived within seconds (${secs.toFixed(1)} s)`)
  assert.ok(!seen.some((s) => s.includes('secret')), 'the refused message never reached the parent')

  await waitFor('the refused message counted as dead-lettered', () => child.broker.bridge.status().deadLettered === 1)
  const st = child.broker.bridge.status()
  assert.equal(st.queueLength, 0, JSON.stringify(st))
  assert.match(st.lastError ?? '', /\/remote\/messages\/secret\/x/, 'lastError names the topic')

  // The hub's bridgeBackoffMs reached the bridge: the first reconnect waited at most 50 ms (at the
  // 500 ms default it would be 250–500 ms).
  const delays = childLog.lines.filter((l) => l.msg === 'bridge reconnecting').map((l) => l.inMs as number)
  assert.ok(delays.length >= MAX_ATTEMPTS - 1, `reconnects: ${delays.join(', ')}`)
  assert.ok(delays[0] <= FAST_BACKOFF.bridgeBackoffMs, `first reconnect after ${delays[0]} ms`)

  const dead = await child.broker.bridge.deadLetters.list()
  assert.equal(dead.total, 1)
  assert.equal(dead.items[0].topic, '/remote/messages/secret/x')
  assert.equal(dead.items[0].payload, 'poison')
  assert.equal(dead.items[0].attempts, MAX_ATTEMPTS)
  assert.match(dead.items[0].reason, /closed the connection/)

  // The parent now allows it: retry puts it back in the queue and it goes up.
  await setParentPolicy(parent, false)
  const secret = collect(watcher, 1, { filter: (m) => m.topic === '/remote/messages/secret/x', timeoutMs: 10_000 })
  const r = await child.broker.bridge.deadLetters.retry()
  assert.deepEqual(r, { requeued: 1, ids: [dead.items[0].id] })
  assert.equal((await secret)[0].payload.toString(), 'poison')
  await waitFor('the retried message left the queue', () => child.broker.bridge.status().queueLength === 0)
  assert.equal(child.broker.bridge.status().deadLettered, 0)

  // Refused again: dead-lettered again; purge empties the store.
  await setParentPolicy(parent, true)
  const after = collect(watcher, 1, { filter: (m) => m.topic === '/remote/messages/ok' && m.payload.toString() === 'ok7', timeoutMs: 20_000 })
  await local.publishAsync('/local/telemetry/secret/y', 'poison2', { qos: 1 })
  await local.publishAsync('/local/telemetry/ok', 'ok7', { qos: 1 })
  await after
  await waitFor('the second refused message dead-lettered', () => child.broker.bridge.status().deadLettered === 1)
  assert.deepEqual(await child.broker.bridge.deadLetters.purge(), { purged: 1 })
  assert.equal((await child.broker.bridge.deadLetters.list()).total, 0)
  assert.equal(child.broker.bridge.status().deadLettered, 0)
})

test('bridge out: messages queued under a replaced config are re-checked: no rule, dropped and counted; a new prefix, re-mapped', async (t) => {
  // The parent is there but refuses the child edge device's CONNECT until the end: messages stay queued.
  const { parent, child } = await hubPair(t, {
    parentPolicy: parentPolicy(false),
    settings: [...OUT, { direction: 'out', topic: 'keep/#', inPrefix: 'l', outPrefix: '/remote/messages/old' }],
    parentDevices: ['watcher'],
    childDevices: ['local'],
    childSettings: FAST_BACKOFF,
  })
  await parent.context.registry.updateDevice('child-edge', { status: 'disabled' })
  await waitFor('the bridge lost the parent', () => child.broker.bridge.status().state !== 'connected')
  const local = await deviceOf(t, child, 'local')
  for (let i = 1; i <= 3; i++) await local.publishAsync('/local/telemetry/gone', `g${i}`, { qos: 1 })
  for (let i = 1; i <= 2; i++) await local.publishAsync('l/keep/a', `k${i}`, { qos: 1 })
  assert.equal(child.broker.bridge.status().queueLength, 5)

  // The /local/telemetry rule goes; keep/# now goes below /remote/messages/new.
  await child.setEdgeHub({ mqttBroker: { bridges: [{ endpoint: '$upstream', settings: [{ direction: 'out', topic: 'keep/#', inPrefix: 'l', outPrefix: '/remote/messages/new' }] }] } }, { replace: false })
  await waitFor('the queued messages re-checked', () => child.broker.bridge.status().queueLength === 2)
  assert.equal(child.broker.bridge.status().droppedNoRule, 3)

  const watcher = await deviceOf(t, parent, 'watcher')
  await subscribeOk(watcher, '/remote/messages/#', 1)
  const got = collect(watcher, 2, { timeoutMs: 15_000 })
  await parent.context.registry.updateDevice('child-edge', { status: 'enabled' })
  assert.deepEqual(
    (await got).map((m) => `${m.topic} ${m.payload.toString()}`),
    ['/remote/messages/new/keep/a k1', '/remote/messages/new/keep/a k2'],
  )
})
