// A short seeded slice of the wire fuzzer (bench/lib/fuzz.ts; `npm run fuzz` runs a million cases):
// mutated MQTT streams on the plain and TLS ports and mutated REST requests, then the broker
// must still serve all three ports. A crash ends this process, which fails the file.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { startHub } from '../../src/emulator/index.js'
import { buildSasToken } from '../../src/sas/index.js'
import { fuzz, serving, type FuzzTarget } from '../../bench/lib/fuzz.js'

test('fuzz slice: 1,500 seeded cases over plain, TLS and REST; the broker still serves', async (t) => {
  const hub = await startHub({ policy: 'allow-all' })
  t.after(() => hub.close())
  await hub.createDevice('fuzz')
  const service = hub.context.hub.policies.find((p) => p.name === 'service')!
  const target: FuzzTarget = {
    host: '127.0.0.1',
    mqtt: hub.ports.mqtt as number,
    mqtts: hub.ports.mqtts as number,
    rest: hub.ports.rest as number,
    deviceId: 'fuzz',
    deviceSas: await hub.sas('fuzz'),
    serviceSas: buildSasToken({ resource: hub.hostName, key: service.primaryKey, policyName: 'service', durationSecs: 600 }),
    hostName: hub.hostName,
  }
  const stats = await fuzz(target, { seed: 15, cases: 1500, workers: 8 })
  assert.ok(stats.cases >= 1500)
  assert.ok(stats.byPort.mqtts > 0 && stats.byPort.rest > 0, `all three ports were hit: ${JSON.stringify(stats.byPort)}`)
  assert.deepEqual(await serving(target), [])
  assert.equal(stats.hung, 0, 'every connection was closed by the broker once this side ended it')
})
