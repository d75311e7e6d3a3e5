/**
 * Issue 21 item 2 with two real broker processes and the real CLI: the parent denies
 * `/remote/messages/secret/#` to the child edge device; the child's device publishes ok1,
 * secret/x, ok2…ok6. ok1…ok6 reach the parent in order within seconds, secret/x is dead-lettered:
 * `broker status` counts it and names it, `bridge dead-letters list` shows it (through the running
 * broker, and from forward.db when the broker is stopped), `retry` re-queues it (it goes up once
 * the parent allows it; offline it waits for the next start), `purge` empties the store.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import type { MqttClient } from 'mqtt'

import type { DeadLetterPage } from '../../src/bridge/dead-letters.js'
import { deviceClient, makePair, PARENT_TOPICS, type Pair, publishAck, setEdgeHub, statusUntil, withHome } from '../helpers/bridge.js'
import { type BrokerProc, startBroker } from '../helpers/broker.js'
import { cliJson, runCli } from '../helpers/cli.js'
import { collect, subscribeOk } from '../helpers/mqtt.js'
import { freePort } from '../helpers/ports.js'

type Via = { via: 'broker' | 'store' }

function parentPolicy(denySecret: boolean): unknown[] {
  return [
    ...(denySecret ? [{ identities: ['child-edge'], deny: [{ operations: ['mqtt:publish'], resources: ['/remote/messages/secret/#'] }] }] : []),
    { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] },
    { identities: ['child-edge', 'watcher'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: PARENT_TOPICS }] },
  ]
}

describe('bridge: a message the parent refuses is dead-lettered; `bridge dead-letters list|retry|purge`', () => {
  let pair: Pair
  let parent: BrokerProc
  let child: BrokerProc
  const clients: MqttClient[] = []
  let watcher: MqttClient
  let local: MqttClient

  before(async () => {
    pair = await makePair()
    await setEdgeHub(pair.parent.home, { mqttBroker: { authorizations: parentPolicy(true) } })
    parent = await startBroker(pair.parent.home, ['--tls-port', String(await freePort())])
    await pair.linkChild(parent)
    // Reconnects from 50 ms (a hub setting, as a user would set it): the same 5 attempts without 15 s of real backoff.
    await withHome(pair.child.home, (ctx) => ctx.store.updateHub((h) => ({ ...h, broker: { ...h.broker, bridgeBackoffMs: 50 } })))
    child = await startBroker(pair.child.home)
    await child.waitForLog(/bridge connected to \$upstream/)
    watcher = await deviceClient(pair.parent, parent, 'watcher')
    clients.push(watcher)
    await subscribeOk(watcher, '/remote/messages/#', 1)
    local = await deviceClient(pair.child, child, 'local')
    clients.push(local)
  })

  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)))
    await Promise.all([child?.stop(), parent?.stop()])
  })

  it('ok1…ok6 arrive in order within seconds; secret/x is dead-lettered, counted and named', async () => {
    const t0 = Date.now()
    // Until ok6: a message in flight when the parent dropped the connection may arrive twice.
    const last = collect(watcher, 1, { filter: (m) => m.payload.toString() === 'ok6', timeoutMs: 20_000 })
    const seen: string[] = []
    const got: string[] = []
    watcher.on('message', (topic, payload) => {
      seen.push(topic)
      if (topic === '/remote/messages/ok') got.push(payload.toString())
    })
    await publishAck(local, '/local/telemetry/ok', 'ok1')
    await publishAck(local, '/local/telemetry/secret/x', 'poison')
    for (let i = 2; i <= 6; i++) await publishAck(local, '/local/telemetry/ok', `ok${i}`)
    await last
    console.log(`# dead-letters e2e: ok1…ok6 in ${((Date.now() - t0) / 1000).toFixed(1)} s as ${got.join(',')}`)
    assert.deepEqual([...new Set(got)], ['ok1', 'ok2', 'ok3', 'ok4', 'ok5', 'ok6'])
    assert.ok(!seen.some((t) => t.includes('secret')))

    const st = await statusUntil(pair.child.home, (b) => b.deadLettered === 1)
    assert.equal(st.queueLength, 0)
    assert.match(st.lastError ?? '', /"\/remote\/messages\/secret\/x"/)
    assert.match(st.lastError ?? '', /dead-letter/)

    const page = await cliJson<DeadLetterPage & Via>(pair.child.home, ['bridge', 'dead-letters', 'list'])
    assert.equal(page.via, 'broker')
    assert.equal(page.total, 1)
    assert.deepEqual(
      { topic: page.items[0].topic, payload: page.items[0].payload, localTopic: page.items[0].localTopic, attempts: page.items[0].attempts },
      { topic: '/remote/messages/secret/x', payload: 'poison', localTopic: '/local/telemetry/secret/x', attempts: 5 },
    )
    const table = await runCli(['bridge', 'dead-letters', 'list', '-o', 'table'], { home: pair.child.home })
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^id\s+topic\s+bytes\s+attempts/m)
    assert.match(table.stdout, /\/remote\/messages\/secret\/x/)
  })

  it('retry and purge need --id or --all (exit 1 with a hint)', async () => {
    for (const verb of ['retry', 'purge']) {
      const r = await runCli(['bridge', 'dead-letters', verb], { home: pair.child.home })
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /--id <id>.*--all/)
    }
  })

  it('retry (running broker) re-queues it: once the parent allows it, it arrives', async () => {
    const [{ id }] = (await cliJson<DeadLetterPage>(pair.child.home, ['bridge', 'dead-letters', 'list'])).items
    const mark = parent.mark()
    await setEdgeHub(pair.parent.home, { mqttBroker: { authorizations: parentPolicy(false) } })
    await parent.waitForLog(/applied new \$edgeHub configuration/, { since: mark })
    const secret = collect(watcher, 1, { filter: (m) => m.topic === '/remote/messages/secret/x', timeoutMs: 15_000 })
    const r = await cliJson<{ requeued: number; ids: number[] } & Via>(pair.child.home, ['bridge', 'dead-letters', 'retry', '--id', String(id)])
    assert.deepEqual(r, { via: 'broker', requeued: 1, ids: [id] })
    assert.equal((await secret)[0].payload.toString(), 'poison')
    const st = await statusUntil(pair.child.home, (b) => b.queueLength === 0)
    assert.equal(st.deadLettered, 0)
    assert.equal(st.lastError, undefined, 'an empty dead-letter store clears its lastError')
  })

  it('with the broker stopped, list/retry act on forward.db; the next start sends the retried one (refused again), purge empties', async () => {
    const mark = parent.mark()
    await setEdgeHub(pair.parent.home, { mqttBroker: { authorizations: parentPolicy(true) } })
    await parent.waitForLog(/applied new \$edgeHub configuration/, { since: mark })
    const ok7 = collect(watcher, 1, { filter: (m) => m.payload.toString() === 'ok7', timeoutMs: 20_000 })
    await publishAck(local, '/local/telemetry/secret/y', 'poison2')
    await publishAck(local, '/local/telemetry/ok', 'ok7')
    await ok7
    await statusUntil(pair.child.home, (b) => b.deadLettered === 1)
    await local.endAsync(true)
    await child.stop()

    const offline = await cliJson<DeadLetterPage & Via>(pair.child.home, ['bridge', 'dead-letters', 'list'])
    assert.equal(offline.via, 'store')
    assert.deepEqual(offline.items.map((i) => i.topic), ['/remote/messages/secret/y'])
    const r = await cliJson<{ requeued: number } & Via>(pair.child.home, ['bridge', 'dead-letters', 'retry', '--all'])
    assert.equal(r.via, 'store')
    assert.equal(r.requeued, 1)
    assert.equal((await cliJson<DeadLetterPage>(pair.child.home, ['bridge', 'dead-letters', 'list'])).total, 0)

    // Next start: the retried message goes up, is refused its 5 times, and is back in the store.
    child = await startBroker(pair.child.home)
    await statusUntil(pair.child.home, (b) => b.deadLettered === 1 && b.queueLength === 0, 30_000)
    const purged = await cliJson<{ purged: number } & Via>(pair.child.home, ['bridge', 'dead-letters', 'purge', '--all'])
    assert.deepEqual(purged, { via: 'broker', purged: 1 })
    const st = await statusUntil(pair.child.home, (b) => b.deadLettered === 0)
    assert.equal(st.lastError, undefined)
    assert.equal((await cliJson<DeadLetterPage>(pair.child.home, ['bridge', 'dead-letters', 'list'])).total, 0)
  })
})
