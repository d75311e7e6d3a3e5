// src/broker/group-commit.ts: writes of one tick become one LevelDB batch, reads see writes not
// yet committed, a clear is ordered between the writes around it, every promise resolves only
// once its write is in LevelDB.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'

import { ClassicLevel } from 'classic-level'

import { GroupCommitLevel } from '../../src/broker/group-commit.js'
import { tempHome } from '../helpers/cli.js'

async function openDb(): Promise<{ db: ClassicLevel<string, Buffer>; batches: () => number }> {
  const db = new ClassicLevel<string, Buffer>(join(tempHome(), 'level'), { valueEncoding: 'buffer' })
  await db.open()
  let n = 0
  const batch = db.batch.bind(db) as (...a: unknown[]) => unknown
  ;(db as unknown as { batch: (...a: unknown[]) => unknown }).batch = (...a: unknown[]) => {
    if (a.length > 0) n++
    return batch(...a)
  }
  return { db, batches: () => n }
}

test('group commit: 1,000 puts in one tick are one batch, each promise resolves once it is in LevelDB', async () => {
  const { db, batches } = await openDb()
  const g = new GroupCommitLevel(db)
  await Promise.all(Array.from({ length: 1000 }, (_, i) => g.put(`k:${String(i).padStart(4, '0')}`, Buffer.from(String(i)))))
  assert.equal(batches(), 1)
  assert.equal((await db.get('k:0999'))?.toString(), '999')
  await g.close()
})

test('group commit: reads see uncommitted puts and deletes; chained batches; clear is ordered', async () => {
  const { db } = await openDb()
  const g = new GroupCommitLevel(db)
  await g.put('a:1', Buffer.from('old'))
  const w1 = g.put('a:1', Buffer.from('new'))
  const w2 = g.batch().put('a:2', Buffer.from('two')).del('a:1').write()
  assert.equal(await g.get('a:1'), undefined)
  assert.equal((await g.get('a:2'))?.toString(), 'two')
  const cleared = g.clear({ gte: 'a:', lt: 'a;' })
  assert.equal(await g.get('a:2'), undefined)
  const w3 = g.put('a:3', Buffer.from('three'))
  assert.equal((await g.get('a:3'))?.toString(), 'three')
  await Promise.all([w1, w2, cleared, w3])
  const all: string[] = []
  for await (const v of g.values({ gte: 'a:', lt: 'a;' })) all.push(v.toString())
  assert.deepEqual(all, ['three'])
  await g.close()
})

test('group commit: a failed batch rejects its writers and later writes still go through', async () => {
  const { db } = await openDb()
  const g = new GroupCommitLevel(db)
  const real = db.batch.bind(db) as (...a: unknown[]) => Promise<void>
  let fail = true
  ;(db as unknown as { batch: (...a: unknown[]) => unknown }).batch = (...a: unknown[]) => (fail ? ((fail = false), Promise.reject(new Error('disk full'))) : real(...a))
  await assert.rejects(g.put('x', Buffer.from('1')), /disk full/)
  assert.equal(await g.get('x'), undefined)
  await g.put('y', Buffer.from('2'))
  assert.equal((await db.get('y'))?.toString(), '2')
  await g.close()
})
