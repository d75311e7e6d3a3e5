/**
 * Issue 17: `hub monitor-events` as az runs it (`-p …`, `-t` idle timeout, `--cg`, `-y`, YAML for
 * `-o table/tsv`, `--interface`), `send-d2c-message` / `device simulate` with az's flags, and
 * `hub query` through a running broker (live connectionState). Split from az-groups.test.ts so the
 * two run side by side: the rest of that file needs no broker.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { openHub } from '../../src/config/home.js'
import { type BrokerProc, startBroker } from '../helpers/broker.js'
import { cliJson, runCli, tempHome } from '../helpers/cli.js'
import { rawDevice, rawProbe, setupHub, startMonitor } from '../helpers/raw-mqtt.js'

type Json = Record<string, unknown>

const home = tempHome()

before(() => setupHub(home, ['q-1', 'q-2']))

describe('monitor-events', () => {
  let broker: BrokerProc
  let device: MqttClient
  before(async () => {
    broker = await startBroker(home)
    device = await rawDevice(home, broker, 'q-1')
  })
  after(async () => {
    await device?.endAsync()
    await broker?.stop()
  })

  test('-p all (bare --props): system and application properties and annotations, as az prints them', async () => {
    const monitor = await startMonitor(home, ['-d', 'q-1', '--cg', '$Default', '-y'], rawProbe(device, 'q-1'))
    try {
      await device.publishAsync('devices/q-1/messages/events/color=blue', '{"t": 21}', { qos: 1 })
      const e = (await monitor.waitFor((x) => (x.event.payload as { t?: number }).t === 21)) as unknown as { event: Json & { properties: { application: Json; system: Json }; annotations: Json } }
      assert.deepEqual(e.event.properties.application, { color: 'blue' })
      assert.equal(e.event.annotations['iothub-connection-device-id'], 'q-1')
      assert.equal(typeof e.event.annotations['iothub-enqueuedtime'], 'number')
    } finally {
      await monitor.stop()
    }
  })

  test('hub query through the running broker sees live connectionState and lastActivityTime', async () => {
    const rows = await cliJson<Json[]>(home, ['hub', 'query', '-q', "SELECT deviceId, connectionState, lastActivityTime FROM devices WHERE connectionState = 'Connected'"])
    assert.deepEqual(
      rows.map(({ deviceId, connectionState }) => ({ deviceId, connectionState })),
      [{ deviceId: 'q-1', connectionState: 'Connected' }],
    )
    // q-1 subscribed and sent telemetry in the test above: a real time, not IoT Hub's "never".
    const at = Date.parse(String(rows[0].lastActivityTime))
    assert.ok(at > Date.now() - 10 * 60_000 && at <= Date.now(), String(rows[0].lastActivityTime))
    const idle = await cliJson<Json>(home, ['hub', 'device-twin', 'show', '-d', 'q-2'])
    assert.equal(idle.lastActivityTime, '0001-01-01T00:00:00Z')
  })

  test('send-d2c-message --dfp -p --key --dtmi and device simulate -p --irp --mrc --mrp (az flags)', async () => {
    const file = join(home, 'body.bin')
    writeFileSync(file, Buffer.from([0x01, 0x02, 0xff]))
    const ctx = await openHub({ home })
    const key = (await ctx.registry.getDevice('q-2')).primaryKey as string
    await ctx.close()
    const monitor = await startMonitor(home, ['-p', 'all'], rawProbe(device, 'q-1'))
    try {
      // --key signs with the given key (the device's own here), --dtmi announces a model: the event's interface.
      const sent = await runCli(['iot', 'device', 'send-d2c-message', '-d', 'q-2', '--dfp', file, '-p', 'kind=file', '--key', key, '--dtmi', 'dtmi:com:example:Probe;1'], { home })
      assert.equal(sent.code, 0, sent.stderr)
      const e = (await monitor.waitFor((x) => (x.event.properties as { application?: Json } | undefined)?.application?.kind === 'file')) as unknown as { event: Json }
      assert.equal(e.event.origin, 'q-2')
      assert.equal(e.event.interface, 'dtmi:com:example:Probe;1')
    } finally {
      await monitor.stop()
    }

    // The simulator answers methods with --mrc/--mrp while it runs (two messages 5 s apart) and reports --irp at start.
    const sim = runCli(['device', 'simulate', '-d', 'q-2', '--mc', '2', '--mi', '5', '--irp', '{"fw":"1.0"}', '--mrc', '202', '--mrp', '{"ok":true}', '-p', 'site=lab'], { home, timeoutMs: 60_000 })
    const deadline = Date.now() + 20_000
    for (;;) {
      const twin = await cliJson<{ properties: { reported: { fw?: string } } }>(home, ['twin', 'show', '-d', 'q-2'])
      if (twin.properties.reported.fw === '1.0') break
      assert.ok(Date.now() < deadline, 'the --irp reported properties arrive')
    }
    const answer = await cliJson<{ status: number; payload: unknown }>(home, ['method', 'invoke', '-d', 'q-2', '--method', 'ping', '--timeout', '10'])
    assert.deepEqual(answer, { status: 202, payload: { ok: true } })
    const done = await sim
    assert.equal(done.code, 0, done.stderr)
    const refused = await runCli(['device', 'simulate', '-d', 'q-2', '--rs', 'reject'], { home })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /--rs reject needs --proto http/)
  })

  test("-o table / tsv print each event as YAML, as az prints every output but json (PyYAML's sorted block style)", async () => {
    const marker = `yaml-${Date.now()}`
    const run = runCli(['hub', 'monitor-events', '-d', 'q-1', '-p', 'app', '--mc', '1', '-t', '30', '-o', 'tsv'], { home })
    let done = false
    void run.then(() => (done = true))
    // monitor prints no readiness line when piped: send until its one event (--mc 1) ends it, with a bound.
    for (let i = 0; i < 60 && !done; i++) {
      await device.publishAsync('devices/q-1/messages/events/color=blue', JSON.stringify({ probe: marker }), { qos: 1 })
      await Promise.race([run, new Promise((resolve) => setTimeout(resolve, 250))])
    }
    const r = await run
    assert.equal(r.code, 0, r.stderr)
    assert.equal(
      r.stdout,
      ['event:', "  component: ''", "  interface: ''", "  module: ''", '  origin: q-1', '  payload:', `    probe: ${marker}`, '  properties:', '    application:', '      color: blue', '', ''].join('\n'),
    )
  })

  test('-t is an idle timeout: no events → exits 0 after it; with --mc not reached → exit 4', async () => {
    const started = Date.now()
    const idle = await runCli(['hub', 'monitor-events', '-d', 'nobody', '-p', 'sys', 'app', '-t', '1', '--et', String(Date.now())], { home })
    assert.equal(idle.code, 0, idle.stderr)
    assert.ok(Date.now() - started >= 1000)
    const short = await runCli(['hub', 'monitor-events', '-d', 'nobody', '-t', '1', '--mc', '1'], { home })
    assert.equal(short.code, 4)
    assert.match(short.stderr, /got 0 of 1 events; none came for 1 s/)
    const badProps = await runCli(['hub', 'monitor-events', '-p', 'everything', '-t', '1'], { home })
    assert.notEqual(badProps.code, 0)
  })
})
