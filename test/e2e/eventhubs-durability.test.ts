/**
 * Issue 18, durability of the Event Hubs-compatible endpoint across a process boundary: a device's
 * QoS 1 telemetry, every PUBACK received, then `broker start` is killed with SIGKILL at once; the
 * restarted broker serves every acknowledged event to the unmodified `EventHubConsumerClient`
 * reading from earliest, in order, with the connection string `connection-string show --eh` prints.
 * And the TLS form of the string, with the hub CA trusted the only way the SDK allows (an environment
 * variable read at process start), in a child process.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'

import { startHub } from '../../src/emulator/index.js'

import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { startBroker, type BrokerProc } from '../helpers/broker.js'
import { jsonOf, runCli, tempHome } from '../helpers/cli.js'
import { collectEvents, earliestEventPosition, EventHubConsumerClient } from '../helpers/eventhubs.js'
import { connect } from '../helpers/mqtt.js'
import { REPO_ROOT } from '../helpers/paths.js'

const N = 200
const brokers: BrokerProc[] = []
after(async () => {
  for (const b of brokers) await b.stop().catch(() => undefined)
})

const amqpPortOf = (b: BrokerProc) => (b.ports as { amqp?: number }).amqp as number

test('telemetry acknowledged before kill -9 is read from earliest after the restart', async () => {
  const home = tempHome()
  const created = await runCli(['device', 'create', 'k9-sensor'], { home })
  assert.equal(created.code, 0, created.stderr)
  const key = jsonOf<{ authentication: { symmetricKey: { primaryKey: string } } }>(created).authentication.symmetricKey.primaryKey
  assert.equal((await runCli(['edgehub', 'set', '--default-policy'], { home })).code, 0)

  const first = await startBroker(home, ['--amqp-port', '0'])
  brokers.push(first)
  const device = await connect({ port: first.ports.mqtt, clientId: 'k9-sensor', password: buildSasToken({ resource: deviceResource('edgemq', 'k9-sensor'), key, durationSecs: 3600 }) })
  for (let i = 0; i < N; i += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => device.publishAsync(`devices/k9-sensor/messages/events/n=${i + j}`, JSON.stringify({ i: i + j }), { qos: 1 })))
  }
  // Every PUBACK is in: kill the broker before anything else can happen.
  await first.kill()
  device.end(true)

  const second = await startBroker(home, ['--amqp-port', '0'])
  brokers.push(second)
  const cs = await runCli(['connection-string', 'show', '--eh', '--emulator', '--port', String(amqpPortOf(second)), '-o', 'tsv'], { home })
  assert.equal(cs.code, 0, cs.stderr)
  assert.match(cs.stdout.trim(), /^Endpoint=sb:\/\/localhost:\d+\/;SharedAccessKeyName=iothubowner;SharedAccessKey=[^;]+;EntityPath=edgemq;UseDevelopmentEmulator=true$/)
  const client = new EventHubConsumerClient('$Default', cs.stdout.trim())
  try {
    const c = collectEvents(client, N, { startPosition: earliestEventPosition, timeoutMs: 30_000 })
    const got = await c.done
    await c.close()
    assert.deepEqual(
      got.map((r) => (r.event.body as { i: number }).i),
      Array.from({ length: N }, (_, i) => i),
    )
    assert.ok(got.every((r) => r.event.systemProperties?.['iothub-connection-device-id'] === 'k9-sensor' && r.event.properties?.n === String((r.event.body as { i: number }).i)))
  } finally {
    await client.close()
  }
})

test('the TLS form (amqps, the hub CA trusted with NODE_EXTRA_CA_CERTS, as for the service SDK) answers a consumer in a child process', async (tt) => {
  const hub = await startHub({ ports: { mqtts: null, rest: null, amqps: 0 } })
  tt.after(() => hub.close())
  const dir = tempHome('edgemq-eh-ca-')
  const caFile = join(dir, 'ca.pem')
  writeFileSync(caFile, hub.caPem)
  const cs = hub.eventHubConnectionString()
  assert.doesNotMatch(cs, /UseDevelopmentEmulator/)
  const code = `import { EventHubConsumerClient } from '@azure/event-hubs'
const c = new EventHubConsumerClient('$Default', process.env.CS, { retryOptions: { maxRetries: 0, timeoutInMs: 10000 } })
try { console.log(JSON.stringify(await c.getPartitionIds())) } finally { await c.close() }`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO_ROOT, env: { ...process.env, CS: cs, NODE_EXTRA_CA_CERTS: caFile, NODE_OPTIONS: undefined, NODE_TEST_CONTEXT: undefined } })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr.on('data', (b: Buffer) => (err += b.toString()))
  const [exitCode] = (await once(child, 'exit')) as [number]
  assert.equal(exitCode, 0, err)
  assert.deepEqual(JSON.parse(out), ['0', '1', '2', '3'])
})
