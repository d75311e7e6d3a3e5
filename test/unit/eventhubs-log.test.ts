// The built-in endpoint's event log (issue 18), on the module: stable device → partition mapping,
// sequence numbers and offsets per partition, start positions as the Event Hubs client writes them,
// retention by count and by age that keeps the numbering, and a reopened file that has it all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { EventLog } from '../../src/eventhubs/log.js'
import { parseSelectorFilter } from '../../src/eventhubs/filter.js'
import { partitionOf } from '../../src/eventhubs/partition.js'
import { createConsumerGroup, deleteConsumerGroup, listConsumerGroups, showConsumerGroup } from '../../src/eventhubs/consumer-groups.js'
import { openHub } from '../../src/config/home.js'

const ev = (deviceId: string, body: string, enqueuedTime?: number) => ({ deviceId, properties: { k: body }, systemProperties: { contentType: 'text/plain' }, body: Buffer.from(body), enqueuedTime })

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-ehlog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('a device always maps to the same partition, and devices spread over all of them', () => {
  assert.equal(partitionOf('dev1', 4), partitionOf('dev1', 4))
  const seen = new Set<number>()
  for (let i = 0; i < 64; i++) seen.add(partitionOf(`device-${i}`, 4))
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3])
})

test('sequence numbers and offsets count per partition; read serves from any point; positions resolve as Event Hubs', (t) => {
  const log = new EventLog({ file: ':memory:', partitionCount: 4, retentionSecs: 3600, retentionCount: 1000 })
  t.after(() => log.close())
  const p = log.partitionOf('a')
  const other = [...Array(50).keys()].map((i) => `b${i}`).find((d) => log.partitionOf(d) !== p) as string
  const t0 = 1_700_000_000_000
  const a0 = log.append(ev('a', 'x', t0))
  log.append(ev(other, 'y', t0))
  const a1 = log.append(ev('a', 'yy', t0 + 10))
  const a2 = log.append(ev('a', 'zzz', t0 + 5)) // a clock step back: enqueued time stays monotonic
  assert.deepEqual([a0.sequenceNumber, a1.sequenceNumber, a2.sequenceNumber], [0, 1, 2])
  assert.ok(a0.offset < a1.offset && a1.offset < a2.offset)
  assert.equal(a2.enqueuedTime, t0 + 10)
  assert.equal(log.read(log.partitionOf(other), 0, 10).length, 1)
  assert.deepEqual(log.read(p, 1, 10).map((e) => e.body.toString()), ['yy', 'zzz'])

  const info = log.partitionInfo(p)
  assert.deepEqual(info, { partition: p, beginSequenceNumber: 0, lastSequenceNumber: 2, lastOffset: String(a2.offset), lastEnqueuedTime: t0 + 10, isEmpty: false })

  const at = (filter: string) => log.resolve(p, parseSelectorFilter(filter))
  assert.equal(at("amqp.annotation.x-opt-offset > '-1'"), 0) // earliest
  assert.equal(at("amqp.annotation.x-opt-offset > '@latest'"), 3) // latest
  assert.equal(at(`amqp.annotation.x-opt-offset > '${a0.offset}'`), 1)
  assert.equal(at(`amqp.annotation.x-opt-offset >= '${a1.offset}'`), 1)
  assert.equal(at("amqp.annotation.x-opt-sequence-number > '0'"), 1)
  assert.equal(at("amqp.annotation.x-opt-sequence-number >= '2'"), 2)
  assert.equal(at(`amqp.annotation.x-opt-enqueued-time > '${t0}'`), 1)
  assert.equal(at("amqp.annotation.x-opt-sequence-number > '99'"), 3) // past the end: only new events
  assert.throws(() => parseSelectorFilter("amqp.annotation.x-opt-partition-key = 'a'"), /unsupported selector filter/)
  assert.throws(() => parseSelectorFilter("amqp.annotation.x-opt-offset > 'abc'"), /not an integer/)
})

test('live readers hear every append of their partition, in order', (t) => {
  const log = new EventLog({ file: ':memory:', partitionCount: 2, retentionSecs: 3600, retentionCount: 1000 })
  t.after(() => log.close())
  const p = log.partitionOf('a')
  const heard: number[] = []
  const stop = log.subscribe(p, (e) => heard.push(e.sequenceNumber))
  for (let i = 0; i < 5; i++) log.append(ev('a', String(i)))
  stop()
  log.append(ev('a', 'after'))
  assert.deepEqual(heard, [0, 1, 2, 3, 4])
})

test('retention by count and by age drops the oldest events and keeps the numbering, also across a reopen', (t) => {
  const file = join(tempDir(t), 'eventhubs.db')
  let now = 1_700_000_000_000
  const open = () => new EventLog({ file, partitionCount: 4, retentionSecs: 60, retentionCount: 5, now: () => now })
  const log = open()
  const p = log.partitionOf('a')
  for (let i = 0; i < 8; i++) log.append(ev('a', `m${i}`))
  log.trim()
  assert.equal(log.partitionInfo(p).beginSequenceNumber, 3)
  assert.deepEqual(log.read(p, 0, 100).map((e) => e.body.toString()), ['m3', 'm4', 'm5', 'm6', 'm7'])
  now += 61_000
  log.append(ev('a', 'young'))
  log.trim()
  assert.deepEqual(log.read(p, 0, 100).map((e) => [e.sequenceNumber, e.body.toString()]), [[8, 'young']])
  now += 61_000
  log.trim()
  const empty = log.partitionInfo(p)
  assert.equal(empty.isEmpty, true)
  assert.equal(empty.lastSequenceNumber, 8)
  log.close()

  const again = open()
  t.after(() => again.close())
  assert.deepEqual(again.partitionInfo(p), empty)
  assert.equal(again.append(ev('a', 'next')).sequenceNumber, 9)
  assert.equal(again.read(p, 0, 10).length, 1)
})

test('a log that holds events keeps its partition count', (t) => {
  const file = join(tempDir(t), 'eventhubs.db')
  const first = new EventLog({ file, partitionCount: 4, retentionSecs: 60, retentionCount: 5 })
  first.append(ev('a', 'x'))
  first.close()
  const second = new EventLog({ file, partitionCount: 8, retentionSecs: 60, retentionCount: 5 })
  t.after(() => second.close())
  assert.equal(second.partitionCount, 4)
  assert.equal(second.requestedPartitionCount, 8)
})

test('consumer groups: $Default always, created ones listed, shown, deleted; names checked as Event Hubs does', async (t) => {
  const ctx = await openHub({ home: '(in-memory)', inMemory: true, createDefault: true })
  t.after(() => ctx.close())
  assert.deepEqual(listConsumerGroups(ctx.hub).map((g) => g.name), ['$Default'])
  await createConsumerGroup(ctx, 'analytics')
  assert.deepEqual(listConsumerGroups(ctx.hub).map((g) => g.name), ['$Default', 'analytics'])
  assert.equal(showConsumerGroup(ctx.hub, 'ANALYTICS').name, 'analytics')
  await assert.rejects(createConsumerGroup(ctx, 'Analytics'), /already exists/)
  await assert.rejects(createConsumerGroup(ctx, '-bad'), /invalid consumer group name/)
  await assert.rejects(deleteConsumerGroup(ctx, '$Default'), /cannot be deleted/)
  await deleteConsumerGroup(ctx, 'analytics')
  assert.throws(() => showConsumerGroup(ctx.hub, 'analytics'), /not found/)
  assert.deepEqual(listConsumerGroups((await ctx.store.getHub())!).map((g) => g.name), ['$Default'])
})

test('retention by bytes: a partition keeps about its byte bound, the oldest go first, numbering goes on', (t) => {
  const log = new EventLog({ file: ':memory:', partitionCount: 1, retentionSecs: 3600, retentionCount: 1_000_000, retentionBytes: 10_000 })
  t.after(() => log.close())
  const body = 'x'.repeat(999) // 1,000 offset units each
  for (let i = 0; i < 100; i++) log.append(ev('a', body))
  const info = log.partitionInfo(0)
  const kept = log.read(0, 0, 1000)
  assert.ok(kept.length >= 10 && kept.length <= 12, `kept ${kept.length} events of 1 kB under a 10 kB bound`)
  assert.equal(kept.at(-1)?.sequenceNumber, 99, 'the newest are kept')
  assert.equal(info.lastSequenceNumber, 99)
  assert.equal(info.beginSequenceNumber, kept[0].sequenceNumber)
})

test('group commit: queued events are stored together by one flush; a failed flush stores none and leaves the numbering as it was', async (t) => {
  const file = join(tempDir(t), 'eventhubs.db')
  const log = new EventLog({ file, partitionCount: 1, retentionSecs: 3600, retentionCount: 1000 })
  t.after(() => log.close())
  log.append(ev('a', 'first'))
  log.enqueue(ev('a', 'x'))
  log.enqueue(ev('a', 'yy'))
  assert.equal(log.pending, 2)
  assert.equal(log.partitionInfo(0).lastSequenceNumber, 0, 'nothing queued is visible before the commit')
  const stored = log.flush()
  assert.deepEqual(stored.map((e) => [e.sequenceNumber, e.offset]), [[1, 6], [2, 8]])
  assert.equal(log.pending, 0)

  // Another writer took the row the second queued event needs: the whole batch must roll back.
  const { default: Database } = await import('better-sqlite3')
  const other = new Database(file)
  other.prepare("INSERT INTO events (partition, seq, offset, enqueued_at, device_id, sys, props, body) VALUES (0, 4, 999, 0, 'z', '{}', '{}', x'00')").run()
  other.close()
  const before = log.partitionInfo(0)
  log.enqueue(ev('a', 'lost-1'))
  log.enqueue(ev('a', 'lost-2'))
  assert.throws(() => log.flush(), /UNIQUE|PRIMARY KEY|constraint/i)
  assert.deepEqual(log.partitionInfo(0), before)
  assert.equal(log.pending, 0)
  const check = new Database(file, { readonly: true })
  t.after(() => check.close())
  assert.deepEqual(check.prepare("SELECT seq FROM events WHERE device_id = 'a' ORDER BY seq").all(), [{ seq: 0 }, { seq: 1 }, { seq: 2 }], 'the event before the conflict was rolled back with it')
})

test('the endpoint commits the telemetry of one tick together and releases whenStored callbacks (the PUBACKs) only after the commit', async (t) => {
  const ctx = await openHub({ home: '(in-memory)', inMemory: true, createDefault: true })
  t.after(() => ctx.close())
  const { BuiltinEndpoint } = await import('../../src/eventhubs/endpoint.js')
  const { default: pino } = await import('pino')
  const settings = { eventHubPartitions: 1, eventRetentionSecs: 3600, eventRetentionCount: 1000, eventRetentionBytes: 1 << 20 }
  const ep = new BuiltinEndpoint({ file: ':memory:', settings, hub: ctx.hub, store: ctx.store, log: pino({ level: 'silent' }) })
  t.after(() => ep.close())
  const tele = (body: string) => ({ deviceId: 'a', properties: {}, systemProperties: {}, payload: Buffer.from(body), enqueuedTime: new Date().toISOString() })

  let ran = false
  ep.whenStored(() => (ran = true))
  assert.equal(ran, true, 'nothing queued: at once')

  const seenAtCallback: number[] = []
  ep.appendTelemetry(tele('m0'))
  ep.whenStored(() => seenAtCallback.push(ep.log.partitionInfo(0).lastSequenceNumber))
  ep.appendTelemetry(tele('m1'))
  ep.whenStored(() => seenAtCallback.push(ep.log.partitionInfo(0).lastSequenceNumber))
  assert.deepEqual(seenAtCallback, [], 'no callback before the commit')
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(seenAtCallback, [1, 1], 'both events committed (one transaction) before either callback')
  assert.deepEqual(ep.log.read(0, 0, 10).map((e) => e.body.toString()), ['m0', 'm1'])
})
