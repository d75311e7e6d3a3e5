/**
 * The registry library without the CLI: IoT Hub's id and key rules, the Registry's business
 * rules over an in-memory SqliteStore, and the Store's atomic behaviour.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { openHub, type HubContext } from '../../src/config/home.js'
import { ConflictError, NotFoundError, UsageError } from '../../src/errors.js'
import { SqliteStore } from '../../src/registry/sqlite-store.js'
import { validateDeviceId, validateKey, normalizeThumbprintInput } from '../../src/registry/validate.js'
import { parseSasToken, verifySasToken } from '../../src/sas/index.js'
import { newHubRecord } from '../../src/config/home.js'

const memHub = (): Promise<HubContext> => openHub({ home: '/nonexistent-in-memory', inMemory: true })

describe('validation (IoT Hub rules)', () => {
  test('device ids: ≤128 chars of A-Za-z0-9 and -.+%_#*?!(),:=@$\'', () => {
    for (const ok of ['a', 'sub_client', "-.+%_#*?!(),:=@$'", 'x'.repeat(128)]) validateDeviceId(ok)
    for (const bad of ['', 'bad/id', 'sp ace', 'ümlaut', 'x'.repeat(129), 'a\nb', 'a&b']) {
      assert.throws(() => validateDeviceId(bad), UsageError, JSON.stringify(bad))
    }
  })

  test('keys: canonical base64 of 16–64 bytes', () => {
    validateKey(Buffer.alloc(16).toString('base64'), 'primary')
    validateKey(Buffer.alloc(64).toString('base64'), 'primary')
    for (const bad of [Buffer.alloc(15).toString('base64'), Buffer.alloc(65).toString('base64'), 'not base64!', 'AAAA AAAA AAAA AAAA AAAA AA==', Buffer.alloc(32).toString('base64').slice(0, -1)]) {
      assert.throws(() => validateKey(bad, 'primary'), UsageError, bad)
    }
  })

  test('thumbprints: SHA-1 or SHA-256 hex, colons and case ignored', () => {
    assert.equal(normalizeThumbprintInput('aa:'.repeat(19) + 'aa', 'primary'), 'AA'.repeat(20))
    assert.equal(normalizeThumbprintInput('b'.repeat(64), 'primary'), 'B'.repeat(64))
    assert.throws(() => normalizeThumbprintInput('abc', 'primary'), UsageError)
  })
})

describe('Registry over an in-memory store', () => {
  test('a new hub has its edge device with the runtime modules', async () => {
    const ctx = await memHub()
    try {
      assert.equal(ctx.hub.name, 'edgemq')
      const edge = await ctx.registry.getDevice('edge-gateway')
      assert.equal(edge.edge, true)
      assert.deepEqual((await ctx.registry.listModules('edge-gateway')).map((m) => m.moduleId).sort(), ['$edgeAgent', '$edgeHub'])
    } finally {
      await ctx.close()
    }
  })

  test('create: generated keys, twin, duplicate refused, parent must be an edge device', async () => {
    const ctx = await memHub()
    const { registry, store } = ctx
    try {
      const d = await registry.createDevice({ deviceId: 'd1', parentId: 'edge-gateway' })
      assert.equal(Buffer.from(d.primaryKey ?? '', 'base64').length, 32)
      assert.ok(await store.getTwin({ deviceId: 'd1' }))
      await assert.rejects(registry.createDevice({ deviceId: 'd1' }), ConflictError)
      await assert.rejects(registry.createDevice({ deviceId: 'd2', parentId: 'd1' }), /not an IoT Edge device/)
      await assert.rejects(registry.createDevice({ deviceId: 'd3', parentId: 'nope' }), NotFoundError)
      await assert.rejects(registry.createDevice({ deviceId: 'gw', edge: true, parentId: 'gw' }), /own parent/)
      await assert.rejects(registry.createDevice({ deviceId: 'x1', auth: 'selfSigned' }), /needs --primary-thumbprint/)
      await assert.rejects(registry.createDevice({ deviceId: 'x2', auth: 'sas', primaryThumbprint: 'A'.repeat(40) }), /thumbprints only apply/)
    } finally {
      await ctx.close()
    }
  })

  test('update: etag check, status; delete cascades to modules and twins; the edge device stays', async () => {
    const ctx = await memHub()
    const { registry, store } = ctx
    try {
      const d = await registry.createDevice({ deviceId: 'd1' })
      await registry.createModule({ deviceId: 'd1', moduleId: 'm1' })
      await assert.rejects(registry.updateDevice('d1', { status: 'disabled', etag: 'stale' }), /etag/)
      const u = await registry.updateDevice('d1', { status: 'disabled', etag: d.etag })
      assert.equal(u.status, 'disabled')
      assert.notEqual(u.etag, d.etag)
      await registry.deleteDevice('d1')
      assert.equal(await store.getModule('d1', 'm1'), undefined)
      assert.equal(await store.getTwin({ deviceId: 'd1', moduleId: 'm1' }), undefined)
      assert.equal(await store.getTwin({ deviceId: 'd1' }), undefined)
      await assert.rejects(registry.deleteDevice('d1'), NotFoundError)
      await assert.rejects(registry.deleteDevice('edge-gateway'), /cannot be deleted/)
      await assert.rejects(registry.createModule({ deviceId: 'nope', moduleId: 'm' }), NotFoundError)
    } finally {
      await ctx.close()
    }
  })

  test('SAS tokens and connection strings use the identity keys', async () => {
    const ctx = await memHub()
    const { registry } = ctx
    try {
      const d = await registry.createDevice({ deviceId: 'd1' })
      const m = await registry.createModule({ deviceId: 'd1', moduleId: 'm1' })
      const dt = parseSasToken(await registry.sasToken('d1', undefined, { keyType: 'secondary' }))
      assert.deepEqual(verifySasToken(dt, [d.primaryKey ?? '', d.secondaryKey ?? ''], { acceptedResources: ['edgemq.azure-devices.net/devices/d1'] }), { ok: true, keyIndex: 1 })
      const mt = parseSasToken(await registry.sasToken('d1', 'm1'))
      assert.equal(mt.resource, 'edgemq.azure-devices.net/devices/d1/modules/m1')
      assert.equal(verifySasToken(mt, [m.primaryKey ?? ''], { acceptedResources: [mt.resource] }).ok, true)
      assert.equal(
        await registry.connectionString('d1', 'm1', { gateway: 'localhost' }),
        `HostName=edgemq.azure-devices.net;DeviceId=d1;ModuleId=m1;SharedAccessKey=${m.primaryKey};GatewayHostName=localhost`,
      )
      const svc = parseSasToken(registry.serviceSasToken())
      assert.equal(svc.skn, 'iothubowner')
      assert.throws(() => registry.policy('nope'), NotFoundError)
    } finally {
      await ctx.close()
    }
  })
})

describe('SqliteStore', () => {
  test('initHub is create-once (force replaces and empties); writes feed the change log', async () => {
    const store = new SqliteStore(':memory:')
    try {
      assert.equal(await store.initHub(newHubRecord({ name: 'one' })), true)
      assert.equal(await store.initHub(newHubRecord({ name: 'two' })), false)
      assert.equal((await store.getHub())?.name, 'one')
      const before = await store.lastChangeSeq()
      await store.updateTwin({ deviceId: 'nope' }, (t) => t, 'tags').catch(() => undefined)
      assert.equal(await store.lastChangeSeq(), before, 'a failed write leaves no change entry (same transaction)')
      assert.equal(await store.initHub(newHubRecord({ name: 'two' }), { force: true }), true)
      assert.equal((await store.getHub())?.name, 'two')
      const changes = await store.changesSince(0)
      assert.deepEqual(changes.map((c) => c.op), ['create', 'replace'])
    } finally {
      await store.close()
    }
  })
})

describe('Registry.updateModule and Registry.setUpstream', () => {
  test('updateModule: new validated keys and managedBy, a new etag; a stale etag or a bad key is refused', async () => {
    const ctx = await memHub()
    try {
      await ctx.registry.createDevice({ deviceId: 'd' })
      const m = await ctx.registry.createModule({ deviceId: 'd', moduleId: 'm' })
      const key = Buffer.alloc(32, 7).toString('base64')
      const next = await ctx.registry.updateModule('d', 'm', { primaryKey: key, managedBy: 'iotEdge', etag: m.etag })
      assert.equal(next.primaryKey, key)
      assert.equal(next.secondaryKey, m.secondaryKey)
      assert.equal(next.managedBy, 'iotEdge')
      assert.notEqual(next.etag, m.etag)
      assert.deepEqual(await ctx.registry.getModule('d', 'm'), next)
      await assert.rejects(ctx.registry.updateModule('d', 'm', { etag: m.etag }), UsageError)
      await assert.rejects(ctx.registry.updateModule('d', 'm', { secondaryKey: 'not base64!' }), UsageError)
      await assert.rejects(ctx.registry.updateModule('d', 'nope', {}), NotFoundError)
    } finally {
      await ctx.close()
    }
  })

  test('setUpstream stores the parent and null removes it', async () => {
    const ctx = await memHub()
    try {
      const upstream = { hostName: 'parent.azure-devices.net', gatewayHostName: 'localhost', deviceId: 'child', sharedAccessKey: Buffer.alloc(32).toString('base64'), port: 8884 }
      const set = await ctx.registry.setUpstream(upstream)
      assert.equal(set.upstream?.deviceId, 'child')
      assert.equal((await ctx.store.getHub())?.upstream?.port, 8884)
      const cleared = await ctx.registry.setUpstream(null)
      assert.equal('upstream' in cleared, false)
      assert.equal((await ctx.store.getHub())?.upstream, undefined)
    } finally {
      await ctx.close()
    }
  })
})
