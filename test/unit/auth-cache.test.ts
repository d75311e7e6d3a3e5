/**
 * Issue 16: a CONNECT's registry lookups are cached (broker/registry-cache.ts) and its HMACs
 * memoized (sas/token.ts), so the caches must never let a change through late: a rotated key, a
 * disabled or deleted device take effect on the very next CONNECT, whether the change is made
 * through the broker's own registry connection or by another process on the same home (here a
 * second SQLite connection, as a CLI command is), without waiting for the change feed's poll.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { RegistryCache } from '../../src/broker/registry-cache.js'
import { openHub, type HubContext } from '../../src/config/home.js'
import type { DeviceRecord, Store } from '../../src/registry/types.js'
import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { connackCode } from '../helpers/mqtt.js'
import { SEED_FIXTURES } from '../helpers/paths.js'

const token = (deviceId: string, key: string) => buildSasToken({ resource: deviceResource('edgemq', deviceId), key, durationSecs: 3600 })
const newKey = (fill: number) => Buffer.alloc(32, fill).toString('base64')

describe('CONNECT caches follow every registry change at once', () => {
  let t: TestHub
  /** Another connection to the same registry file: what a CLI process writes through. */
  let other: HubContext
  const home = mkdtempSync(join(tmpdir(), 'edgemq-auth-cache-'))

  before(async () => {
    // Each refusal below comes right after the write, well inside the change feed's 200 ms poll.
    t = await startTestHub({ inMemory: false, home, ports: { mqtts: null, rest: null } })
    await t.hub.setEdgeHub(readFileSync(join(SEED_FIXTURES, 'seed-policy-pubsub.json'), 'utf8'))
    other = await openHub({ home })
  })

  after(async () => {
    await other?.close()
    await t?.stop()
    rmSync(home, { recursive: true, force: true })
  })

  const code = (deviceId: string, key: string) => connackCode({ port: t.ports.mqtt, clientId: deviceId, password: token(deviceId, key) })

  it('a key rotated by another process: the old token is refused on the next CONNECT, the new one accepted', async () => {
    const k1 = newKey(1)
    await t.hub.createDevice('rot-other', { primaryKey: k1, secondaryKey: newKey(2) })
    assert.equal(await code('rot-other', k1), 0)
    assert.equal(await code('rot-other', k1), 0, 'served from the caches the second time')
    const k3 = newKey(3)
    await other.registry.updateDevice('rot-other', { primaryKey: k3, secondaryKey: newKey(4) })
    assert.equal(await code('rot-other', k1), 4)
    assert.equal(await code('rot-other', k3), 0)
  })

  it('a key rotated through the broker’s own registry connection: the same', async () => {
    const k1 = newKey(5)
    await t.hub.createDevice('rot-own', { primaryKey: k1, secondaryKey: newKey(6) })
    assert.equal(await code('rot-own', k1), 0)
    const k7 = newKey(7)
    await t.hub.broker.ctx.registry.updateDevice('rot-own', { primaryKey: k7, secondaryKey: newKey(8) })
    assert.equal(await code('rot-own', k1), 4)
    assert.equal(await code('rot-own', k7), 0)
  })

  it('a device disabled, then deleted, by another process is refused on the next CONNECT (5)', async () => {
    const k = newKey(9)
    await t.hub.createDevice('gone', { primaryKey: k, secondaryKey: newKey(10) })
    assert.equal(await code('gone', k), 0)
    await other.registry.updateDevice('gone', { status: 'disabled' })
    assert.equal(await code('gone', k), 5)
    await other.registry.updateDevice('gone', { status: 'enabled' })
    assert.equal(await code('gone', k), 0)
    await other.registry.deleteDevice('gone')
    assert.equal(await code('gone', k), 5)
  })

  it('an unknown device created by another process may connect at once (no stale "unknown")', async () => {
    const k = newKey(11)
    assert.equal(await code('late', k), 5)
    await other.registry.createDevice({ deviceId: 'late', primaryKey: k, secondaryKey: newKey(12) })
    assert.equal(await code('late', k), 0)
  })

  it('a changed policy: an identity the new policy refuses is refused on the next CONNECT (its cached policy view goes with the old policy)', async () => {
    const k = newKey(13)
    await t.hub.createDevice('pol', { primaryKey: k, secondaryKey: newKey(14) })
    assert.equal(await code('pol', k), 0)
    const doc = (authorizations: unknown[]) => JSON.stringify({ $edgeHub: { 'properties.desired': { schemaVersion: '1.2', mqttBroker: { authorizations } } } })
    const connectAll = { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }
    await t.hub.setEdgeHub(doc([{ identities: ['pol'], deny: [{ operations: ['mqtt:connect'] }] }, connectAll]))
    assert.equal(await code('pol', k), 5)
    await t.hub.setEdgeHub(doc([connectAll]))
    assert.equal(await code('pol', k), 0)
  })
})

describe('RegistryCache reads the data version only to serve a hit', () => {
  /** A store over one mutable record, counting its reads: the version moves with every write. */
  const countingStore = () => {
    const s = { version: 1, versionReads: 0, deviceReads: 0, status: 'enabled' }
    const store = {
      dataVersion: () => (s.versionReads++, String(s.version)),
      getDevice: async (id: string) => (s.deviceReads++, { deviceId: id, status: s.status } as DeviceRecord),
    } as unknown as Store
    return { s, store }
  }
  const nextTurn = () => new Promise((r) => setImmediate(r))

  it('a miss reads the store, not the version; a hit reads the version once per turn', async () => {
    const { s, store } = countingStore()
    const c = new RegistryCache(store)
    await c.device('a')
    await c.device('b')
    assert.deepEqual([s.versionReads, s.deviceReads], [0, 2])
    await nextTurn()
    await c.device('a') // first check ever: nothing was verified yet, so everything goes
    assert.deepEqual([s.versionReads, s.deviceReads], [1, 3])
    await c.device('a')
    await c.device('a')
    assert.deepEqual([s.versionReads, s.deviceReads], [1, 3], 'hits in the same turn: one version read, no store read')
    await nextTurn()
    await c.device('a')
    assert.deepEqual([s.versionReads, s.deviceReads], [2, 3], 'next turn: the version again, still a hit')
  })

  it('a record looked up before a write is not served after it, even if no hit came in between', async () => {
    const { s, store } = countingStore()
    const c = new RegistryCache(store)
    await c.device('x')
    await nextTurn()
    await c.device('x') // version read (1), record re-read under it
    await nextTurn()
    await c.device('y') // miss: kept under version 1
    s.status = 'disabled'
    s.version = 2
    await nextTurn()
    assert.equal((await c.device('y'))?.status, 'disabled')
    assert.equal((await c.device('x'))?.status, 'disabled')
  })
})
