// A short seeded slice of the wire fuzzer (bench/lib/fuzz.ts; `npm run fuzz` runs a million cases):
// mutated MQTT streams on the plain and TLS ports and mutated REST requests, then the broker
// must still serve all three ports. A crash ends this process, which fails the file.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { startHub } from '../../src/emulator/index.js'
import { fuzz, fuzzTargetOf, serving } from '../../bench/lib/fuzz.js'

test('fuzz slice: 1,500 seeded cases over plain, TLS and REST; the broker still serves', async (t) => {
  const hub = await startHub({ policy: 'allow-all' })
  t.after(() => hub.close())
  const target = await fuzzTargetOf(hub, 600)
  const stats = await fuzz(target, { seed: 15, cases: 1500, workers: 8 })
  assert.ok(stats.cases >= 1500)
  assert.ok(stats.byPort.mqtts > 0 && stats.byPort.rest > 0, `all three ports were hit: ${JSON.stringify(stats.byPort)}`)
  assert.deepEqual(await serving(target), [])
  assert.equal(stats.hung, 0, 'every connection was closed by the broker once this side ended it')
})
