// The in-process mqemitter's tuning (src/broker/aedes-internals.ts): cacheMqMatches delivers
// exactly what a plain mqemitter delivers, through subscribes and unsubscribes between messages;
// fastMqQueues runs a long queue without recursing once per message.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import mqemitter, { type MQEmitter } from 'mqemitter'

import { cacheMqMatches, fastMqQueues } from '../../src/broker/aedes-internals.js'
import { mulberry32 } from '../helpers/prng.js'

const emit = (mq: MQEmitter, topic: string) => new Promise<void>((resolve) => mq.emit({ topic }, () => resolve()))
const settle = () => new Promise((resolve) => setImmediate(resolve))

test('cacheMqMatches: the same deliveries as a plain mqemitter over random subscribes, unsubscribes and messages', async () => {
  const rand = mulberry32(7)
  const topics = ['a', 'a/b', 'a/b/c', 'x/y', 'devices/d1/messages/events/', '$iothub/twin/res/200']
  const filters = ['a', 'a/+', 'a/#', '#', '+/y', 'devices/+/messages/events/#', '$iothub/twin/res/#', 'a/b/c']
  const plain = mqemitter({ concurrency: 1000, matchEmptyLevels: true })
  const cached = mqemitter({ concurrency: 1000, matchEmptyLevels: true })
  cacheMqMatches(cached, 3) // small, so the cache also starts over while the test runs
  const seen: Record<'plain' | 'cached', string[]> = { plain: [], cached: [] }
  const handlers = new Map<string, { plain: (m: { topic: string }, cb: () => void) => void; cached: (m: { topic: string }, cb: () => void) => void }>()
  let hits = 0
  for (let i = 0; i < 600; i++) {
    const r = rand()
    const f = filters[Math.floor(rand() * filters.length)]
    if (r < 0.15 && !handlers.has(f)) {
      const h = {
        plain: (m: { topic: string }, cb: () => void) => (seen.plain.push(`${f}<-${m.topic}`), cb()),
        cached: (m: { topic: string }, cb: () => void) => (seen.cached.push(`${f}<-${m.topic}`), cb()),
      }
      handlers.set(f, h)
      plain.on(f, h.plain)
      cached.on(f, h.cached)
    } else if (r < 0.25 && handlers.has(f)) {
      const h = handlers.get(f)!
      handlers.delete(f)
      plain.removeListener(f, h.plain)
      cached.removeListener(f, h.cached)
      await settle() // mqemitter removes on the next check phase
    } else {
      const t = topics[Math.floor(rand() * topics.length)]
      await emit(plain, t)
      await emit(cached, t)
      hits++
    }
    assert.deepEqual(seen.cached, seen.plain, `after step ${i}`)
  }
  assert.ok(hits > 300 && seen.plain.length > 300, `messages went through (${hits} emits, ${seen.plain.length} deliveries)`)
})

test('fastMqQueues: 50,000 queued messages that nobody receives run in order without overflowing the stack (a plain mqemitter overflows)', () => {
  const run = (mq: MQEmitter): { completed: number; inOrder: boolean; error?: string } => {
    let release: (() => void) | undefined
    mq.on('hold', (_m: unknown, cb: () => void) => (release = cb))
    mq.emit({ topic: 'hold' }) // takes the one slot (concurrency 1): everything after it queues
    const done: number[] = []
    for (let i = 0; i < 50_000; i++) mq.emit({ topic: 'nobody', i } as never, () => done.push(i))
    try {
      release!() // the queue now runs from inside this call
    } catch (err) {
      return { completed: done.length, inOrder: false, error: (err as Error).message }
    }
    return { completed: done.length, inOrder: done.every((x, i) => x === i) }
  }
  const plain = run(mqemitter({ concurrency: 1 }))
  assert.match(plain.error ?? '', /Maximum call stack size exceeded/, 'the scenario does overflow a plain mqemitter')
  const tuned = mqemitter({ concurrency: 1 })
  fastMqQueues(tuned)
  assert.deepEqual(run(tuned), { completed: 50_000, inOrder: true })
})

test('cacheMqMatches: a wide match (more than 64 handlers, not kept) is delivered in full, before and after a change', async () => {
  const mq = mqemitter({ concurrency: 1000, matchEmptyLevels: true })
  cacheMqMatches(mq)
  let got = 0
  const handler = (_m: unknown, cb: () => void) => (got++, cb())
  for (let i = 0; i < 100; i++) mq.on('wide/#', (m: unknown, cb: () => void) => handler(m, cb))
  await emit(mq, 'wide/x')
  await emit(mq, 'wide/x')
  assert.equal(got, 200)
  mq.on('wide/x', handler)
  await emit(mq, 'wide/x')
  assert.equal(got, 301)
})
