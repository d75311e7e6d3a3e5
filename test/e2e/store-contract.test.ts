/**
 * The Store contract, run against both backends: the embedded SqliteStore and the cluster's
 * RedisStore (a private redis-server). Same table of behaviours, same expected results and
 * error types, so the broker and CLI cannot tell them apart.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { newHubRecord } from '../../src/config/home.js'
import { ConflictError, EdgeMqError, NotFoundError } from '../../src/errors.js'
import { RedisStore } from '../../src/registry/redis-store.js'
import { SqliteStore } from '../../src/registry/sqlite-store.js'
import type { DeviceRecord, ModuleRecord, Store, TwinRecord } from '../../src/registry/types.js'
import { redisAvailable, startRedis, type RedisProc } from '../helpers/redis.js'

const now = new Date().toISOString()

function device(deviceId: string, extra: Partial<DeviceRecord> = {}): DeviceRecord {
  return { deviceId, authType: 'sas', primaryKey: 'a', secondaryKey: 'b', generationId: 'g', etag: 'e', createdAt: now, updatedAt: now, status: 'enabled', statusUpdatedAt: now, edge: false, ...extra }
}

function module(deviceId: string, moduleId: string): ModuleRecord {
  return { deviceId, moduleId, authType: 'sas', generationId: 'g', etag: 'e', createdAt: now, updatedAt: now }
}

const bumpDesired = (t: TwinRecord): TwinRecord => ({ ...t, desired: { n: ((t.desired.n as number | undefined) ?? 0) + 1 }, desiredVersion: t.desiredVersion + 1, version: t.version + 1 })

type Factory = { name: string; open(hub: string): Promise<Store> }

let redis: RedisProc | undefined
let hubCounter = 0
const haveRedis = redisAvailable()

const factories: Factory[] = [
  { name: 'sqlite', open: async () => new SqliteStore(':memory:') },
  {
    name: 'redis',
    // A fresh hub name per test: a fresh key space on the shared server.
    open: async (hub) => RedisStore.open((redis as RedisProc).url, `${hub}-${++hubCounter}`),
  },
]

before(async () => {
  if (haveRedis) redis = await startRedis()
})
after(async () => {
  await redis?.stop()
})

for (const f of factories) {
  describe(`Store contract: ${f.name}`, { skip: f.name === 'redis' && !haveRedis ? 'redis-server not installed' : false }, () => {
    const withStore = async (fn: (s: Store) => Promise<void>) => {
      const s = await f.open('contract')
      try {
        await fn(s)
      } finally {
        await s.close()
      }
    }

    test('hub: init once, second init refused, force replaces and wipes devices, update is atomic', () =>
      withStore(async (s) => {
        assert.equal(await s.getHub(), undefined)
        await assert.rejects(s.updateHub((h) => h), NotFoundError)
        const hub = newHubRecord({ name: 'contract' })
        assert.equal(await s.initHub(hub), true)
        assert.equal(await s.initHub(newHubRecord({ name: 'other' })), false)
        assert.equal((await s.getHub())?.name, 'contract')
        await s.createDevice(device('d1'))
        await s.createModule(module('d1', 'm1'))
        assert.equal(await s.initHub(newHubRecord({ name: 'replaced' }), { force: true }), true)
        assert.equal((await s.getHub())?.name, 'replaced')
        assert.deepEqual(await s.listDevices(), [])
        assert.deepEqual(await s.listModules('d1'), [])
        assert.equal(await s.getTwin({ deviceId: 'd1' }), undefined)
        // 20 concurrent read-modify-writes: none lost.
        await Promise.all(Array.from({ length: 20 }, (_, i) => s.updateHub((h) => ({ ...h, policies: [...h.policies, { name: `p${i}`, primaryKey: 'k', secondaryKey: 'k', rights: [] }] }))))
        assert.equal((await s.getHub())?.policies.filter((p) => p.name.startsWith('p')).length, 20)
      }))

    test('devices: create, duplicate → ConflictError, get, list sorted, put, put missing → NotFoundError, delete', () =>
      withStore(async (s) => {
        await s.createDevice(device('b'))
        await s.createDevice(device('a', { edge: true }))
        await assert.rejects(s.createDevice(device('a')), ConflictError)
        assert.equal((await s.getDevice('a'))?.edge, true)
        assert.equal(await s.getDevice('zz'), undefined)
        assert.deepEqual((await s.listDevices()).map((d) => d.deviceId), ['a', 'b'])
        await s.putDevice(device('a', { status: 'disabled' }))
        assert.equal((await s.getDevice('a'))?.status, 'disabled')
        await assert.rejects(s.putDevice(device('ghost')), NotFoundError)
        assert.ok(await s.getTwin({ deviceId: 'a' }), 'a device has a twin from birth')
        assert.equal(await s.deleteDevice('a'), true)
        assert.equal(await s.deleteDevice('a'), false)
        assert.equal(await s.getTwin({ deviceId: 'a' }), undefined)
        assert.deepEqual((await s.listDevices()).map((d) => d.deviceId), ['b'])
      }))

    test('ids with odd characters stay distinct (no key collisions)', () =>
      withStore(async (s) => {
        for (const id of ['x:y', 'x', "a-.+%_#*?!(),:=@$'"]) await s.createDevice(device(id))
        await s.createModule(module('x', 'y'))
        await s.updateTwin({ deviceId: 'x:y' }, bumpDesired, 'desired')
        assert.equal((await s.getTwin({ deviceId: 'x', moduleId: 'y' }))?.desiredVersion, 1)
        assert.equal((await s.getTwin({ deviceId: 'x:y' }))?.desiredVersion, 2)
        assert.equal((await s.listDevices()).length, 3)
      }))

    test('modules: need their device, duplicate → ConflictError, list sorted, put, delete; deleting the device deletes them', () =>
      withStore(async (s) => {
        await assert.rejects(s.createModule(module('nodev', 'm')), NotFoundError)
        await s.createDevice(device('d'))
        await s.createModule(module('d', 'm2'))
        await s.createModule(module('d', 'm1'))
        await assert.rejects(s.createModule(module('d', 'm1')), ConflictError)
        assert.deepEqual((await s.listModules('d')).map((m) => m.moduleId), ['m1', 'm2'])
        assert.equal((await s.getModule('d', 'm1'))?.moduleId, 'm1')
        assert.equal(await s.getModule('d', 'nope'), undefined)
        await s.putModule({ ...module('d', 'm1'), managedBy: 'me' })
        assert.equal((await s.getModule('d', 'm1'))?.managedBy, 'me')
        await assert.rejects(s.putModule(module('d', 'ghost')), NotFoundError)
        assert.equal(await s.deleteModule('d', 'm2'), true)
        assert.equal(await s.deleteModule('d', 'm2'), false)
        assert.equal(await s.getTwin({ deviceId: 'd', moduleId: 'm2' }), undefined)
        assert.ok(await s.getTwin({ deviceId: 'd', moduleId: 'm1' }))
        await s.deleteDevice('d')
        assert.deepEqual(await s.listModules('d'), [])
        assert.equal(await s.getTwin({ deviceId: 'd', moduleId: 'm1' }), undefined)
      }))

    test('twins: atomic read-modify-write (50 concurrent increments), mutate may throw to abort, missing → NotFoundError', () =>
      withStore(async (s) => {
        await s.createDevice(device('t'))
        await s.createModule(module('t', 'm'))
        const base = (await s.getTwin({ deviceId: 't' })) as TwinRecord
        assert.deepEqual([base.version, base.desiredVersion, base.reportedVersion], [1, 1, 1])
        await Promise.all(Array.from({ length: 50 }, () => s.updateTwin({ deviceId: 't' }, bumpDesired, 'desired')))
        const t = (await s.getTwin({ deviceId: 't' })) as TwinRecord
        assert.equal(t.desired.n, 50)
        assert.equal(t.desiredVersion, 51)
        await assert.rejects(
          s.updateTwin({ deviceId: 't' }, () => {
            throw new EdgeMqError('nope')
          }, 'desired'),
          /nope/,
        )
        assert.equal(((await s.getTwin({ deviceId: 't' })) as TwinRecord).desiredVersion, 51, 'aborted mutate wrote nothing')
        await s.updateTwin({ deviceId: 't', moduleId: 'm' }, bumpDesired, 'desired')
        assert.equal(((await s.getTwin({ deviceId: 't', moduleId: 'm' })) as TwinRecord).desiredVersion, 2)
        await assert.rejects(s.updateTwin({ deviceId: 'ghost' }, bumpDesired, 'desired'), NotFoundError)
        await assert.rejects(s.updateTwin({ deviceId: 't', moduleId: 'ghost' }, bumpDesired, 'desired'), NotFoundError)
      }))

    test('DPS documents: put replaces, get, list sorted by id, kinds apart, delete; a forced hub init wipes them', () =>
      withStore(async (s) => {
        await s.initHub(newHubRecord({ name: 'contract' }))
        await s.putDpsDoc('enrollment', 'b', { registrationId: 'b', v: 1 })
        await s.putDpsDoc('enrollment', 'a', { registrationId: 'a', v: 1 })
        await s.putDpsDoc('enrollment', 'a', { registrationId: 'a', v: 2 })
        await s.putDpsDoc('registration', 'a', { registrationId: 'a', status: 'assigned' })
        assert.deepEqual(await s.getDpsDoc('enrollment', 'a'), { registrationId: 'a', v: 2 })
        assert.equal(await s.getDpsDoc('enrollmentGroup', 'a'), undefined)
        assert.deepEqual((await s.listDpsDocs('enrollment')).map((d) => (d as { registrationId: string }).registrationId), ['a', 'b'])
        assert.equal(await s.deleteDpsDoc('enrollment', 'a'), true)
        assert.equal(await s.deleteDpsDoc('enrollment', 'a'), false)
        assert.deepEqual(await s.getDpsDoc('registration', 'a'), { registrationId: 'a', status: 'assigned' })
        await s.initHub(newHubRecord({ name: 'contract' }), { force: true })
        assert.deepEqual(await s.listDpsDocs('enrollment'), [])
        assert.deepEqual(await s.listDpsDocs('registration'), [])
      }))

    test('change feed: every write appends in order, with kind/op/ids; nothing for failed writes', () =>
      withStore(async (s) => {
        const start = await s.lastChangeSeq()
        await s.initHub(newHubRecord({ name: 'contract' }))
        await s.createDevice(device('c'))
        await assert.rejects(s.createDevice(device('c')), ConflictError)
        await s.createModule(module('c', 'm'))
        await s.putDevice(device('c', { status: 'disabled' }))
        await s.updateTwin({ deviceId: 'c', moduleId: 'm' }, bumpDesired, 'desired')
        await s.updateHub((h) => h)
        await s.deleteModule('c', 'm')
        await s.deleteDevice('c')
        assert.equal(await s.deleteDevice('c'), false)
        const changes = await s.changesSince(start)
        assert.deepEqual(
          changes.map((c) => [c.kind, c.op, c.deviceId ?? null, c.moduleId ?? null]),
          [
            ['hub', 'create', null, null],
            ['device', 'create', 'c', null],
            ['module', 'create', 'c', 'm'],
            ['device', 'update', 'c', null],
            ['twin', 'desired', 'c', 'm'],
            ['hub', 'update', null, null],
            ['module', 'delete', 'c', 'm'],
            ['device', 'delete', 'c', null],
          ],
        )
        const seqs = changes.map((c) => c.seq)
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b))
        assert.equal(await s.lastChangeSeq(), seqs[seqs.length - 1])
        assert.deepEqual(await s.changesSince(seqs[5]), changes.slice(6))
        assert.deepEqual(await s.changesSince(await s.lastChangeSeq()), [])
      }))
  })
}

describe('RedisStore specifics', { skip: haveRedis ? false : 'redis-server not installed' }, () => {
  test('watch: another process’s write is announced over pub/sub within a second', async () => {
    const a = await RedisStore.open((redis as RedisProc).url, 'watchhub')
    const b = await RedisStore.open((redis as RedisProc).url, 'watchhub')
    try {
      const seen = new Promise<number>((resolve) => {
        const t0 = Date.now()
        void a.watch(() => resolve(Date.now() - t0))
      })
      await new Promise((r) => setTimeout(r, 100))
      await b.initHub(newHubRecord({ name: 'watchhub' }))
      assert.ok((await seen) < 1000)
    } finally {
      await a.close()
      await b.close()
    }
  })

  test('hubs on one Redis are isolated by prefix', async () => {
    const a = await RedisStore.open((redis as RedisProc).url, 'iso-a')
    const b = await RedisStore.open((redis as RedisProc).url, 'iso-b')
    try {
      await a.createDevice(device('same'))
      await b.createDevice(device('same'))
      assert.equal((await a.listDevices()).length, 1)
      assert.equal(await a.deleteDevice('same'), true)
      assert.ok(await b.getDevice('same'))
    } finally {
      await a.close()
      await b.close()
    }
  })

  test('unreachable Redis and a wrong password fail fast with a clear error', async () => {
    const t0 = Date.now()
    await assert.rejects(RedisStore.open('redis://127.0.0.1:1/0', 'x'), (err: Error) => err instanceof EdgeMqError && /cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/0: .*ECONNREFUSED/.test(err.message))
    assert.ok(Date.now() - t0 < 5000)
    const secured = await startRedis({ password: 's3cret' })
    try {
      const bad = secured.url.replace('s3cret', 'wrong')
      await assert.rejects(RedisStore.open(bad, 'x'), (err: Error) => err instanceof EdgeMqError && /refused the credentials: WRONGPASS/.test(err.message) && !err.message.includes('wrong'))
      await assert.rejects(RedisStore.open(secured.url.replace(':s3cret@', ''), 'x'), /requires a password: NOAUTH/)
      const ok = await RedisStore.open(secured.url, 'x')
      await ok.close()
    } finally {
      await secured.stop()
    }
  })
})
