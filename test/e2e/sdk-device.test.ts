/**
 * The official Azure IoT device SDK for Node (azure-iot-device + azure-iot-device-mqtt) works
 * unchanged against edgemq (issue 6): telemetry seen by `monitor`, twin GET and reported patch
 * seen by `twin show`, a desired patch made by `twin update`, a direct method invoked by
 * `method invoke`, C2D from `c2d send`; and the same for a module client.
 * The SDK always dials port 8883, so this file's broker listens there.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'

import { startBroker, type BrokerProc } from '../helpers/broker.js'
import { cliOk, runCli, tempHome } from '../helpers/cli.js'
import { Client, Message, ModuleClient, Mqtt, type SdkClient, type SdkMessage } from '../helpers/device-sdk.js'


const home = tempHome()
let broker: BrokerProc
let ca: string

const cli = (args: string[]) => cliOk(home, args)

before(async () => {
  await cli(['device', 'create', 'sdkdev'])
  await cli(['module', 'create', '--device', 'edge-gateway', 'sdkmod'])
  await cli(['edgehub', 'set', '--default-policy'])
  // Debug level: the test waits for the broker's SUBSCRIBE line before invoking a method.
  broker = await startBroker(home, ['--tls-port', '8883', '--log-level', 'debug'])
  ca = readFileSync(broker.caFile, 'utf8')
})
after(async () => {
  await broker?.stop()
})

/** Starts `edgemq monitor` and resolves once it is streaming (the broker logs nothing for it, so wait for its own readiness: first byte of the HTTP stream). */
function startMonitor(args: string[]) {
  return runCli(['monitor', '--timeout', '20', ...args], { home, timeoutMs: 30_000 })
}

async function connect(kind: 'device' | 'module'): Promise<SdkClient> {
  const cs = (await cli(kind === 'device' ? ['connection-string', 'show', '--device', 'sdkdev', '--gateway', 'localhost', '-o', 'tsv'] : ['connection-string', 'show', '--device', 'edge-gateway', '--module', 'sdkmod', '--gateway', 'localhost', '-o', 'tsv'])).trim()
  assert.match(cs, /GatewayHostName=localhost/)
  const client = (kind === 'device' ? Client : ModuleClient).fromConnectionString(cs, Mqtt)
  await client.setOptions({ ca })
  await client.open()
  return client
}

for (const kind of ['device', 'module'] as const) {
  test(`the official SDK ${kind} client works unchanged`, async () => {
    const id = kind === 'device' ? 'sdkdev' : 'edge-gateway/sdkmod'
    const target = kind === 'device' ? ['--device', 'sdkdev'] : ['--device', 'edge-gateway', '--module', 'sdkmod']
    const client = await connect(kind)
    try {
      await broker.waitForLog(new RegExp(`"client":"${id.replace('/', '\\/')}".*client connected`))

      // Telemetry → monitor.
      const monitor = startMonitor([...target, '--message-count', '1', '--props'])
      // monitor has subscribed once the broker streamed its first newline; retry sending until it sees one.
      const msg = new Message(JSON.stringify({ temperature: 21.5, kind }))
      msg.properties.add('alert', 'yes')
      let done = false
      void monitor.then(() => (done = true))
      for (let i = 0; i < 50 && !done; i++) {
        await client.sendEvent(msg)
        await Promise.race([monitor, new Promise((r) => setTimeout(r, 200))])
      }
      const mon = await monitor
      assert.equal(mon.code, 0, mon.stderr)
      const ev = JSON.parse(mon.stdout.trim().split('\n')[0]) as { event: { origin: string; module: string; payload: { temperature: number }; properties: { application: Record<string, string> } } }
      assert.equal(ev.event.origin, kind === 'device' ? 'sdkdev' : 'edge-gateway')
      assert.equal(ev.event.module, kind === 'device' ? '' : 'sdkmod')
      assert.equal(ev.event.payload.temperature, 21.5)
      assert.equal(ev.event.properties.application.alert, 'yes')

      // Twin: GET, reported patch seen by `twin show`.
      const twin = await client.getTwin()
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: '2.0', kind }, (err) => (err ? reject(err) : resolve())))
      const shown = JSON.parse(await cli(['twin', 'show', ...target])) as { properties: { reported: Record<string, unknown> }; connectionState: string }
      assert.equal(shown.properties.reported.firmware, '2.0')
      assert.equal(shown.connectionState, 'Connected')

      // Desired patch from `twin update` reaches the SDK.
      const desired = new Promise<Record<string, unknown>>((resolve) => twin.on('properties.desired', (p) => p.interval === 7 && resolve(p)))
      await cli(['twin', 'update', ...target, '--desired', '{"interval": 7}'])
      const patch = await desired
      assert.equal(patch.interval, 7)

      // Direct method from `method invoke`.
      const register = kind === 'device' ? client.onDeviceMethod!.bind(client) : client.onMethod!.bind(client)
      const since = broker.mark()
      register('reboot', (req, res) => void res.send(200, { rebooted: true, got: req.payload }))
      await broker.waitForLog(new RegExp(`"client":"${id}".*"subscriptions":\\[[^\\]]*\\$iothub/methods/POST/#`), { since, timeoutMs: 15_000 })
      let invoked: { status: number; payload: { rebooted: boolean; got: { delay: number } } } | undefined
      for (let i = 0; i < 20 && !invoked; i++) {
        const r = await runCli(['method', 'invoke', ...target, '--method', 'reboot', '--payload', '{"delay": 3}', '--timeout', '10'], { home })
        if (r.code === 0) invoked = JSON.parse(r.stdout)
        else await new Promise((res) => setTimeout(res, 100)) // the SDK subscribes lazily after onDeviceMethod
      }
      assert.ok(invoked, 'method invoke never succeeded')
      assert.equal(invoked.status, 200)
      assert.deepEqual(invoked.payload, { rebooted: true, got: { delay: 3 } })

      if (kind === 'device') {
        // C2D from `c2d send`.
        const received = new Promise<SdkMessage>((resolve) => client.on('message', (m) => resolve(m)))
        let got: SdkMessage | undefined
        void received.then((m) => (got = m))
        for (let i = 0; i < 20 && !got; i++) {
          await cli(['c2d', 'send', '--device', 'sdkdev', '--data', 'hello device', '--props', 'color=blue'])
          await Promise.race([received, new Promise((r) => setTimeout(r, 250))])
        }
        const m = await received
        assert.equal(m.data.toString(), 'hello device')
        assert.equal(m.properties.getValue('color'), 'blue')
        await client.complete(m)
      }
    } finally {
      await client.close()
    }
  })
}
