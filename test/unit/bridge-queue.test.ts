// The store-and-forward queue's dead-letter store and re-check (issue 21 item 2), on the module:
// a forward.db of an earlier edgemq is migrated in place and its rows (no local topic) are
// re-checked through the rule that could have produced them; dead letters retry in order at the
// tail, purge by id or all; the store is bounded.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import Database from 'better-sqlite3'

import { recheckQueued } from '../../src/bridge/bridge.js'
import { deadLetterView } from '../../src/bridge/dead-letters.js'
import { ForwardQueue } from '../../src/bridge/queue.js'
import { compileBridgeSettings } from '../../src/bridge/topics.js'

const rules = (settings: Parameters<typeof compileBridgeSettings>[0]) => compileBridgeSettings(settings).out

test('a forward.db of an earlier version is migrated; its rows are re-checked by the rule that could have made them', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-queue-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'forward.db')
  const old = new Database(file)
  old.exec('CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, enqueued_at INTEGER NOT NULL)')
  const ins = old.prepare('INSERT INTO queue (topic, payload, qos, retain, enqueued_at) VALUES (?, ?, 1, 0, ?)')
  for (const topic of ['/remote/messages/a', '/remote/messages/secret/x', 'devices/d1/messages/events/', 'elsewhere/z']) ins.run(topic, Buffer.from(topic), Date.now())
  old.close()

  const q = new ForwardQueue(file)
  t.after(() => q.close())
  assert.equal(q.length, 4)
  assert.deepEqual(q.peek(0, 10).map((m) => [m.topic, m.attempts, m.origin]), [
    ['/remote/messages/a', 0, undefined],
    ['/remote/messages/secret/x', 0, undefined],
    ['devices/d1/messages/events/', 0, undefined],
    ['elsewhere/z', 0, undefined],
  ])
  // The new config keeps /local/telemetry → /remote/messages but only for a/#.
  const out = rules([{ direction: 'out', topic: 'a/#', inPrefix: '/local/telemetry', outPrefix: '/remote/messages' }])
  const r = q.recheck('v2', (m) => recheckQueued(out, m))
  assert.deepEqual(r, { dropped: 2, remapped: 0 })
  assert.deepEqual(q.peek(0, 10).map((m) => m.topic), ['/remote/messages/a', 'devices/d1/messages/events/'], 'routed telemetry stays')
  assert.equal(q.droppedNoRule, 2)
  assert.equal(q.length, 2)
  // Same rules again (a restart, another $edgeHub change): no scan.
  assert.equal(q.recheck('v2', () => assert.fail('scanned again')), undefined)
})

test('re-check: a rule message follows its rule to a new prefix, or goes; routed telemetry always stays', () => {
  const out = rules([{ direction: 'out', topic: 'keep/#', inPrefix: 'l', outPrefix: 'new' }])
  assert.deepEqual(recheckQueued(out, { topic: 'old/keep/a', localTopic: 'l/keep/a', origin: 'out' }), { keep: true, topic: 'new/keep/a' })
  assert.deepEqual(recheckQueued(out, { topic: 'old/gone', localTopic: 'l/gone', origin: 'out' }), { keep: false })
  assert.deepEqual(recheckQueued([], { topic: 'devices/d/messages/events/', origin: 'route' }), { keep: true })
})

test('dead letters: moved with their attempts and reason, retried in order at the tail, purged by id or all, bounded', () => {
  const q = new ForwardQueue(':memory:', 1000, 3)
  const seqs = ['a', 'b', 'c', 'd'].map((x) => q.push(`t/${x}`, Buffer.from(x), 1, false, 1000, { origin: 'out', localTopic: `l/${x}` }))
  assert.equal(q.recordFailure(seqs[0]), 1)
  assert.equal(q.recordFailure(seqs[0]), 2)
  assert.equal(q.recordFailure(999), 0, 'a message no longer queued has no attempts')
  for (const s of seqs) assert.equal(q.deadLetter(s, `refused ${s}`, 2000), true)
  assert.equal(q.deadLetter(seqs[0], 'again', 2000), false)
  assert.equal(q.length, 0)
  assert.equal(q.deadLettered, 3, 'bounded: the oldest dead letter made room')
  assert.equal(q.deadDropped, 1)
  const dead = q.listDead()
  assert.deepEqual(dead.map((d) => d.topic), ['t/b', 't/c', 't/d'])
  const v = deadLetterView(dead[0])
  assert.deepEqual({ ...v, id: 0 }, {
    id: 0, topic: 't/b', payload: 'b', payloadEncoding: 'utf8', bytes: 1, qos: 1, retain: false, attempts: 0, reason: `refused ${seqs[1]}`,
    localTopic: 'l/b', enqueuedAt: new Date(1000).toISOString(), deadLetteredAt: new Date(2000).toISOString(),
  })
  assert.equal(deadLetterView({ ...dead[0], payload: Buffer.from([0xff, 0x00]) }).payloadEncoding, 'base64')

  q.push('t/e', Buffer.from('e'), 1, false)
  assert.deepEqual(q.retryDead([dead[2].id, dead[0].id, 12345]), [dead[0].id, dead[2].id], 'ids in order; unknown ones skipped')
  assert.deepEqual(q.peek(0, 10).map((m) => [m.topic, m.attempts, m.localTopic]), [['t/e', 0, undefined], ['t/b', 0, 'l/b'], ['t/d', 0, 'l/d']], 'at the tail, attempts reset')
  assert.ok(q.peek(0, 10).slice(1).every((m) => m.enqueuedAt > 2000), 'the TTL counts from the retry')
  assert.equal(q.length, 3)
  assert.equal(q.deadLettered, 1)
  assert.equal(q.purgeDead([424242]), 0)
  assert.equal(q.purgeDead(), 1)
  assert.equal(q.deadLettered, 0)
  q.close()
})
