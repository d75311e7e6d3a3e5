/**
 * Issue 16: aedes' `$SYS/<id>/new/clients`, `disconnect/clients` and subscribe notices cost a
 * whole publish per CONNECT, close and SUBSCRIBE, and nothing in edgemq can hear them (no `$`
 * topic reaches a client, the bridge ignores them). A single node skips them
 * (aedes-internals.ts skipClientNotices); what they were for on one node still works.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { closed, connect, subscribeGranted } from '../helpers/mqtt.js'

const KEY = Buffer.alloc(32, 3).toString('base64')
const token = (deviceId: string) => buildSasToken({ resource: deviceResource('edgemq', deviceId), key: KEY, durationSecs: 3600 })

describe('$SYS client notices on a single node', () => {
  let t: TestHub
  /** Topics of every publish aedes carried out (its 'publish' event). */
  const published: string[] = []

  before(async () => {
    t = await startTestHub({ ports: { mqtts: null, rest: null } })
    const authorizations = [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:subscribe'], resources: ['$SYS/#', 'x/#'] }] }]
    await t.hub.setEdgeHub(JSON.stringify({ $edgeHub: { 'properties.desired': { schemaVersion: '1.2', mqttBroker: { authorizations } } } }))
    for (const d of ['d1', 'd2']) await t.hub.createDevice(d, { primaryKey: KEY, secondaryKey: KEY })
    t.hub.broker.aedes.on('publish', (p) => void published.push(p.topic))
  })

  after(async () => {
    await t?.stop()
  })

  it('a CONNECT, a SUBSCRIBE and a close publish no notice; $SYS/# is refused even when the policy names it', async () => {
    const d1 = await connect({ port: t.ports.mqtt, clientId: 'd1', password: token('d1') })
    assert.deepEqual(await subscribeGranted(d1, ['$SYS/#', 'x/y']), [128, 0])
    await d1.endAsync()
    // The close is complete once the same id can connect again and is registered.
    const again = await connect({ port: t.ports.mqtt, clientId: 'd1', password: token('d1') })
    await again.endAsync()
    assert.deepEqual(published.filter((p) => p.startsWith('$SYS/') && !p.endsWith('/heartbeat') && !p.endsWith('/birth')), [])
  })

  it('a second CONNECT with the same client id still closes the first (what new/clients does across nodes)', async () => {
    const first = await connect({ port: t.ports.mqtt, clientId: 'd2', password: token('d2') })
    const gone = closed(first)
    const second = await connect({ port: t.ports.mqtt, clientId: 'd2', password: token('d2') })
    await gone
    assert.equal(second.connected, true)
    await second.endAsync()
  })
})
