/**
 * Issue 7 "Must show", store and forward (PROTOCOL.md §5–§6): the parent is killed (SIGKILL), the
 * child takes 5,000 QoS1 messages (every PUBACK awaited; each one durable in `<home>/forward.db`
 * before its PUBACK), the child is killed too, both restart: all 5,000 reach the parent's
 * subscriber, in order, none twice.
 *
 * The parent restarts on the same mqtts port (chosen free up front and passed as --tls-port), so
 * the child's `hub set-upstream` stays valid.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { bridgeStatus, deviceClient, useLinkedPair, publishAck, statusUntil } from '../helpers/bridge.js'
import { startBroker } from '../helpers/broker.js'
import { collect, subscribeOk } from '../helpers/mqtt.js'

const N = 5000

describe('bridge: store and forward across a parent outage and a child crash', () => {
  const lp = useLinkedPair()

  it(`${N} QoS1 messages published while the parent is down all arrive after both restart, in order, none twice`, async () => {
    const { pair, tlsPort, clients } = lp
    let { parent, child } = lp
    // Parent gone: the child notices and starts backing off.
    const reconnecting = child.waitForLog(/bridge reconnecting/, { since: child.mark() })
    await parent.kill()
    await reconnecting

    const local = await deviceClient(pair.child, child, 'local')
    clients.push(local)
    const t0 = Date.now()
    await Promise.all(Array.from({ length: N }, (_, i) => publishAck(local, '/local/telemetry/seq', String(i))))
    const pubMs = Date.now() - t0
    const [queued] = await bridgeStatus(pair.child.home)
    assert.equal(queued.queueLength, N, JSON.stringify(queued))
    assert.notEqual(queued.state, 'connected')
    assert.ok(queued.lastError, 'the lost parent shows as lastError')

    // Crash the child as well: only forward.db holds the messages now.
    await child.kill()

    // Parent back on the same port; its subscriber is in place before the child returns.
    parent = lp.parent = await startBroker(pair.parent.home, ['--tls-port', String(tlsPort)])
    assert.equal(parent.ports.mqtts, tlsPort)
    const watcher = await deviceClient(pair.parent, parent, 'watcher')
    clients.push(watcher)
    const got: string[] = []
    watcher.on('message', (topic, payload) => {
      if (topic === '/remote/messages/seq') got.push(payload.toString())
    })
    const marker = collect(watcher, 1, { filter: (m) => m.topic === '/remote/messages/marker', timeoutMs: 90_000 })
    await subscribeOk(watcher, ['/remote/messages/#'], 1)

    const t1 = Date.now()
    child = lp.child = await startBroker(pair.child.home)
    const local2 = await deviceClient(pair.child, child, 'local')
    clients.push(local2)
    // The marker is queued behind the 5,000: when it arrives, every one of them (and any
    // duplicate) has arrived.
    await publishAck(local2, '/local/telemetry/marker', 'end')
    await marker
    const drainMs = Date.now() - t1

    const dupes = got.length - new Set(got).size
    const missing = N - new Set(got).size
    let outOfOrder = 0
    for (let i = 1; i < got.length; i++) if (Number(got[i]) <= Number(got[i - 1])) outOfOrder++
    console.log(`# outage: ${N} queued in ${pubMs} ms; after restart delivered ${got.length} (unique ${N - missing}, duplicates ${dupes}, out of order ${outOfOrder}) in ${drainMs} ms`)
    assert.equal(missing, 0, 'every message arrived')
    assert.equal(dupes, 0, 'none twice (at-least-once: a duplicate needs a crash between the parent\'s PUBACK and the queue delete)')
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => String(i)), 'in order')

    // The watcher can see the marker before the parent's PUBACKs for the last messages reach the
    // child (they delete them from forward.db): wait for the queue to empty, then check the counters.
    const st = await statusUntil(pair.child.home, (b) => b.queueLength === 0)
    assert.equal(st.state, 'connected')
    assert.equal(st.forwarded, N + 1)
    assert.equal(st.expired, 0)
  })
})
