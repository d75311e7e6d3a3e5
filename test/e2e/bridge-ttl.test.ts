/**
 * Issue 7 "Must show", TTL (PROTOCOL.md §5): with `storeAndForwardConfiguration.timeToLiveSecs: 2`,
 * messages older than 2 s when the parent returns are dropped, not delivered, and counted in
 * `broker status` (bridges[0].expired), the log and the `$edgeHub` reported `bridges`.
 *
 * The parent's subscriber holds a persistent session (clean=false), so whatever the child sends
 * after reconnecting is kept for it however the reconnect races the subscriber: "not delivered"
 * cannot pass just because nobody was listening. The `forwarded` counter checks it too.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import type { MqttClient } from 'mqtt'

import { bridgeStatus, deviceClient, useLinkedPair, publishAck, reportedBridges, statusUntil } from '../helpers/bridge.js'
import { startBroker } from '../helpers/broker.js'
import { collect, type Received, subscribeOk } from '../helpers/mqtt.js'

const OLD = 25

describe('bridge: timeToLiveSecs drops what waited too long', () => {
  const lp = useLinkedPair({ ttlSecs: 2 })

  it(`${OLD} messages older than 2 s when the parent returns are not delivered, and are counted`, async () => {
    const { pair, tlsPort, clients } = lp
    let { parent } = lp
    const { child } = lp
    // The parent's subscriber: a persistent session that outlives the parent's crash.
    const w1 = await deviceClient(pair.parent, parent, 'watcher', { clean: false })
    await subscribeOk(w1, ['/remote/messages/#'], 1)
    await w1.endAsync()

    const reconnecting = child.waitForLog(/bridge reconnecting/, { since: child.mark() })
    await parent.kill()
    await reconnecting

    const local = await deviceClient(pair.child, child, 'local')
    clients.push(local)
    await Promise.all(Array.from({ length: OLD }, (_, i) => publishAck(local, '/local/telemetry/old', String(i))))
    const lastQueued = Date.now()
    const [queued] = await bridgeStatus(pair.child.home)
    assert.equal(queued.queueLength, OLD)

    // What is under test is the passing of time: let the queued messages outlive the 2 s TTL.
    await new Promise((r) => setTimeout(r, Math.max(0, lastQueued + 2100 - Date.now())))

    const connected = child.waitForLog(/bridge connected to \$upstream/, { since: child.mark(), timeoutMs: 40_000 })
    const dropped = child.waitForLog(/dropped queued messages older than timeToLiveSecs/, { since: child.mark(), timeoutMs: 40_000 })
    parent = lp.parent = await startBroker(pair.parent.home, ['--tls-port', String(tlsPort)])
    await connected
    const droppedLine = JSON.parse(await dropped) as { expired: number }
    assert.equal(droppedLine.expired, OLD)

    const got: Received[] = []
    const marker = (c: MqttClient) => {
      c.on('message', (topic, payload, p) => got.push({ topic, payload, qos: p.qos, retain: p.retain }))
    }
    const w2 = await deviceClient(pair.parent, parent, 'watcher', { clean: false, beforeConnect: marker })
    clients.push(w2)
    const end = collect(w2, 1, { filter: (m) => m.topic === '/remote/messages/after' })
    await publishAck(local, '/local/telemetry/after', 'fresh')
    await end
    assert.deepEqual(
      got.map((m) => `${m.topic} ${m.payload.toString()}`),
      ['/remote/messages/after fresh'],
      'only the message sent after the parent returned arrives',
    )

    // The parent's PUBACK can reach the child after the watcher got the message: wait for the queue to empty.
    const st = await statusUntil(pair.child.home, (b) => b.queueLength === 0)
    assert.equal(st.expired, OLD)
    assert.equal(st.forwarded, 1)
    const reported = await reportedBridges(pair.child.home, (b) => b[0]?.expired === OLD && b[0]?.state === 'connected')
    assert.equal(reported[0].queueLength, 0)
  })
})
