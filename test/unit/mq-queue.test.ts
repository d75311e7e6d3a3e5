// aedes-internals.ts fastMqQueues: mqemitter's overflow queue as an O(1) FIFO keeps order and
// delivers everything queued past the concurrency limit.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import mqemitter from 'mqemitter'

import { fastMqQueues } from '../../src/broker/aedes-internals.js'

test('fastMqQueues: 5,000 messages past a concurrency of 1 arrive complete and in order', async () => {
  const mq = mqemitter({ concurrency: 1 })
  fastMqQueues(mq)
  const got: number[] = []
  mq.on('t', (m, cb) => {
    got.push((m as unknown as { n: number }).n)
    setImmediate(cb)
  })
  const n = 5000
  await new Promise<void>((resolve) => {
    let done = 0
    for (let i = 0; i < n; i++) mq.emit({ topic: 't', n: i }, () => ++done === n && resolve())
  })
  assert.equal(got.length, n)
  assert.ok(got.every((x, i) => x === i))
  assert.equal((mq as unknown as { length: number }).length, 0)
})
