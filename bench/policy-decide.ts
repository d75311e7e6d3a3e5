// Policy decision cost (PROTOCOL.md §3; the broker decides on every PUBLISH).
//   node --import tsx bench/policy-decide.ts
// Prints ns/op for the seed policy and a 1,000-statement policy, cached and uncached.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { loadEdgeHubConfig } from '../src/edgehub/index.js'
import { compilePolicy, identityFromClientId, type AuthorizationStatement, type CompiledPolicy } from '../src/policy/index.js'
import { SEED_FIXTURES } from '../test/helpers/paths.js'

let sink = 0 // keeps results alive so nothing is optimised away

/** Runs fn(iterations … iterations+warm-1) to warm up, then times fn(0 … iterations-1): uncached cases never see a warm input. */
function bench(name: string, iterations: number, fn: (i: number) => boolean): void {
  const warm = Math.min(iterations, 20_000)
  for (let i = iterations; i < iterations + warm; i++) sink += fn(i) ? 1 : 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) sink += fn(i) ? 1 : 0
  const ns = Number(process.hrtime.bigint() - t0) / iterations
  console.log(`${name.padEnd(72)} ${ns.toFixed(ns < 10 ? 2 : 0).padStart(10)} ns/op`)
}

function seedPolicy(): CompiledPolicy {
  const text = readFileSync(path.join(SEED_FIXTURES, 'seed-policy-rogue-client.json'), 'utf8')
  return compilePolicy(loadEdgeHubConfig(text).mqttBroker.authorizations ?? [])
}

/** 1,000 statements that all apply to every client (worst case: nothing is filtered out by identity). */
function bigPolicy(): CompiledPolicy {
  const statements: AuthorizationStatement[] = [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }]
  for (let i = 1; i < 1000; i++) {
    statements.push({
      description: `site ${i}`,
      identities: i % 2 === 0 ? ['{{iot:identity}}'] : ['{{iot:device_id}}', `other_${i}`],
      deny: [{ operations: ['mqtt:publish'], resources: [`site/${i}/secret/#`] }],
      allow: [
        { operations: ['mqtt:publish'], resources: [`site/${i}/+/telemetry`, `{{iot:device_id}}/s${i}/#`] },
        { operations: ['mqtt:subscribe'], resources: [`site/${i}/#`] },
      ],
    })
  }
  return compilePolicy(statements)
}

const N = 1_000_000
const sensor = identityFromClientId('sensor_1')
const seed = seedPolicy()
const seedView = seed.forIdentity(sensor)
const distinct = Array.from({ length: 220_000 }, (_, i) => `events/alerts/${i}`) // > cache size: every lookup misses

console.log('seed policy (seed-policy-rogue-client.json, 3 statements)')
bench('  view.canPublish("events/alerts")                 cached', N, () => seedView.canPublish('events/alerts'))
bench('  policy.decide(id, publish, "events/alerts")      cached', N, () => seed.decide(sensor, 'publish', 'events/alerts').decision === 'allow')
bench('  view.canConnect()', N, () => seedView.canConnect())
bench('  view.canPublish(<distinct topic>)              uncached', 200_000, (i) => seedView.canPublish(distinct[i]))
bench('  view.canSubscribe("events/#")                    cached', N, () => seedView.canSubscribe('events/#'))
let fresh = 0
bench('  fresh view + canPublish                 (cold, per client)', 20_000, () => seed.forIdentity(identityFromClientId(`c${fresh++}`)).canPublish('events/alerts'))

const big = bigPolicy()
const dev = identityFromClientId('dev7')
const bigView = big.forIdentity(dev)
const bigTopics = Array.from({ length: 220_000 }, (_, i) => `site/${(i % 999) + 1}/x${i}/telemetry`)
const bigSubs = Array.from({ length: 40_000 }, (_, i) => `site/${(i % 999) + 1}/x${i}/#`)
console.log('1,000-statement policy (every statement applies to the client)')
bench('  view.canPublish("site/500/a/telemetry")          cached', N, () => bigView.canPublish('site/500/a/telemetry'))
bench('  policy.decide(id, publish, …)                    cached', N, () => big.decide(dev, 'publish', 'site/500/a/telemetry').decision === 'allow')
bench('  view.canPublish(<distinct topic>)              uncached', 200_000, (i) => bigView.canPublish(bigTopics[i]))
bench('  view.canPublish(<denied, no match>)            uncached', 200_000, (i) => bigView.canPublish(`nowhere/${i}`))
bench('  view.canSubscribe(<distinct site/n/x/#>)       uncached', 20_000, (i) => bigView.canSubscribe(bigSubs[i]))
bench('  view.canSubscribe("site/+/a/#")  (explores all 999 sites)', 200, (i) => bigView.canSubscribe(`site/+/a${i}/#`))
let freshBig = 0
bench('  fresh view (1,000 shared + 500 own filters) + canPublish (cold)', 500, () => big.forIdentity(identityFromClientId(`b${freshBig++}`)).canPublish('site/2/a/telemetry'))
bench('  compilePolicy(1,000 statements)', 50, () => bigPolicy().statements.length > 0)
if (sink < 0) console.log(sink)
