/**
 * Issue 17: `az iot` scripts run unchanged with `az iot` replaced by `edgemq` — flags whose
 * meaning az defines: `hub connection-string show` without --policy-name is iothubowner,
 * `device-twin update --desired file.json` reads the file (az's process_json_arg),
 * `device simulate --mi` is seconds, and `c2d send` to a device that is not subscribed is queued.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { type BrokerProc, startBroker } from '../helpers/broker.js'
import { cliJson, runCli, tempHome } from '../helpers/cli.js'
import { rawDevice, rawProbe, setupHub, startMonitor } from '../helpers/raw-mqtt.js'
import type { ServiceTwinJson } from '../../src/twin/types.js'

describe('az flags, no broker', () => {
  const home = tempHome()
  before(() => setupHub(home, ['fid-dev']))

  test('`hub connection-string show` without --pn is the iothubowner policy (as az)', async () => {
    const bare = await cliJson<{ connectionString: string }>(home, ['hub', 'connection-string', 'show', '-n', 'edgemq'])
    assert.match(bare.connectionString, /^HostName=edgemq\.azure-devices\.net;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/=]{44}$/)
    const explicit = await cliJson<{ connectionString: string }>(home, ['connection-string', 'show', '--pn', 'iothubowner'])
    assert.equal(bare.connectionString, explicit.connectionString)
    const service = await cliJson<{ connectionString: string }>(home, ['connection-string', 'show', '--policy-name', 'service'])
    assert.match(service.connectionString, /SharedAccessKeyName=service;/)
    const moduleOnly = await runCli(['connection-string', 'show', '-m', 'x'], { home })
    assert.equal(moduleOnly.code, 1)
    assert.match(moduleOnly.stderr, /--module needs --device/)
  })

  test('`device-twin update --desired file.json` (a bare path) reads the file, as az; @file still works', async () => {
    const file = join(home, 'desired.json')
    writeFileSync(file, '{"interval": 42, "mode": {"fast": true},}\n') // lenient, as the rest of edgemq
    const twin = await cliJson<ServiceTwinJson>(home, ['hub', 'device-twin', 'update', '-d', 'fid-dev', '--desired', file])
    assert.equal(twin.properties.desired.interval, 42)
    assert.deepEqual(twin.properties.desired.mode, { fast: true })
    writeFileSync(file, '{"interval": 43}')
    const at = await cliJson<ServiceTwinJson>(home, ['twin', 'update', '-d', 'fid-dev', '--desired', `@${file}`])
    assert.equal(at.properties.desired.interval, 43)
    const tagsFile = join(home, 'tags.json')
    writeFileSync(tagsFile, '{"site": "lab"}')
    const tagged = await cliJson<ServiceTwinJson>(home, ['twin', 'update', '-d', 'fid-dev', '--tags', tagsFile])
    assert.deepEqual(tagged.tags, { site: 'lab' })
  })

  test('a bare path that does not exist says so (not "invalid JSON")', async () => {
    const r = await runCli(['twin', 'update', '-d', 'fid-dev', '--desired', join(home, 'missing.json')], { home })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /--desired: file ".*missing\.json" not found/)
  })
})

describe('device simulate --mi is seconds (as az)', () => {
  const home = tempHome()
  let broker: BrokerProc
  let probe: MqttClient

  before(async () => {
    await setupHub(home, ['sim-dev', 'sim-probe'])
    broker = await startBroker(home)
    probe = await rawDevice(home, broker, 'sim-probe')
  })
  after(async () => {
    await probe?.endAsync()
    await broker?.stop()
  })

  test('--mc 2 --mi 1: the two messages are enqueued about a second apart', async () => {
    const monitor = await startMonitor(home, ['-d', 'sim-*'], rawProbe(probe, 'sim-probe'))
    try {
      const sim = await cliJson<{ sent: number }>(home, ['device', 'simulate', '-d', 'sim-dev', '--mc', '2', '--mi', '1', '--data', '{"sim": {{index}}}'])
      assert.equal(sim.sent, 2)
      const at = async (n: number) => {
        const e = await monitor.waitFor((x) => x.event.origin === 'sim-dev' && (x.event.payload as { sim?: number }).sim === n)
        return Date.parse(e.event.properties?.system['iothub-enqueuedtime'] ?? '')
      }
      const gap = (await at(1)) - (await at(0))
      assert.ok(gap >= 900, `--mi 1 means one second between messages; they were ${gap} ms apart`)
    } finally {
      await monitor.stop()
    }
  })

  test('`c2d send` to a device that is not subscribed says queued; `c2d receive` later gets it (IoT Hub C2D queue)', async () => {
    const sent = await runCli(['device', 'c2d-message', 'send', '-d', 'sim-dev', '--data', 'queued hello', '--props', 'k=v'], { home })
    assert.equal(sent.code, 0, sent.stderr)
    assert.deepEqual(Object.keys(JSON.parse(sent.stdout) as object).sort(), ['messageId', 'queued'])
    assert.equal((JSON.parse(sent.stdout) as { queued: boolean }).queued, true)
    assert.match(sent.stderr, /^queued: device "sim-dev" is not subscribed/m)
    const got = await runCli(['c2d', 'receive', '-d', 'sim-dev', '--count', '1', '--timeout', '20'], { home })
    assert.equal(got.code, 0, got.stderr)
    const m = JSON.parse(got.stdout.trim()) as { data: string; properties: Record<string, string> }
    assert.equal(m.data, 'queued hello')
    assert.deepEqual(m.properties, { k: 'v' })
  })

  test('--mi and --interval (milliseconds) together are refused', async () => {
    const r = await runCli(['device', 'simulate', '-d', 'sim-dev', '--mi', '1', '--interval', '5'], { home })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /either --mi\/--msg-interval \(seconds\) or --interval \(milliseconds\)/)
  })
})
