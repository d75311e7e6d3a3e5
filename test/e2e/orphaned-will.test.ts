// Issue 14 item 1: a will left behind by a broker killed with kill -9 is published by the next
// broker with no live client (aedes' `client = null`). It must go through the same pipeline as
// any publish, as its owner: forged IoT Hub messages are refused, an allowed will still goes out.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { openHub } from '../../src/config/home.js'
import { startHub } from '../../src/emulator/index.js'
import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { setEdgeHubDesired } from '../../src/service/edgehub.js'
import { startBroker } from '../helpers/broker.js'
import { captureLog } from '../helpers/log-capture.js'
import { collect, connect, type Received } from '../helpers/mqtt.js'

const FORGED = [
  '$iothub/methods/POST/reboot/?$rid=1',
  '$iothub/twin/PATCH/properties/desired/?$version=999',
  'devices/victim/messages/devicebound/%24.mid=forged',
  '$iothub/twin/res/200/?$rid=1',
]

test('orphaned wills after kill -9: forged IoT Hub messages refused, an allowed will delivered', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'edgemq-will-'))
  t.after(() => rmSync(home, { recursive: true, force: true }))
  const keys = new Map<string, string>()
  const ctx = await openHub({ home, createDefault: true })
  for (const id of ['victim', 'honest', ...FORGED.map((_, i) => `attacker${i}`)]) keys.set(id, (await ctx.registry.createDevice({ deviceId: id })).primaryKey as string)
  // Everyone may connect, publish and subscribe anywhere a user topic can be (the widest policy there is).
  await setEdgeHubDesired(ctx, { schemaVersion: '1.2', mqttBroker: { authorizations: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] }] } })
  await ctx.close()
  const sas = (id: string) => buildSasToken({ resource: deviceResource('edgemq', id), key: keys.get(id) as string, durationSecs: 3600 })

  const child = await startBroker(home)
  t.after(() => child.kill())
  const port = child.ports.mqtt
  // The victim's persistent session, offline: IoT Hub subscriptions plus `#`.
  const victim = await connect({ port, clientId: 'victim', password: sas('victim'), clean: false })
  await victim.subscribeAsync(['$iothub/methods/POST/#', '$iothub/twin/PATCH/properties/desired/#', 'devices/victim/messages/devicebound/#', '#'], { qos: 1 })
  await victim.endAsync()
  // Each attacker leaves a will on a topic only the hub may publish; `honest` leaves an allowed one.
  const clients = [await connect({ port, clientId: 'honest', password: sas('honest'), will: { topic: 'status/honest', payload: 'offline', qos: 1 } })]
  for (const [i, topic] of FORGED.entries()) clients.push(await connect({ port, clientId: `attacker${i}`, password: sas(`attacker${i}`), will: { topic, payload: '{"forged":true}', qos: 1 } }))
  await child.kill()
  for (const c of clients) c.end(true)

  // The next broker on the same home, with a short heartbeat so aedes sweeps the dead broker's wills soon.
  const log = captureLog()
  const hub = await startHub({ inMemory: false, home, policy: 'none', heartbeatIntervalMs: 100, logger: log.logger, ports: { mqtts: null, rest: null } })
  t.after(() => hub.close())
  const refused = await Promise.all(FORGED.map((topic) => log.waitFor(new RegExp(`"topic":${JSON.stringify(JSON.stringify(topic).slice(1, -1)).replace(/[$?]/g, '\\$&')}.*will refused`), { timeoutMs: 15_000 })))
  assert.equal(refused.length, FORGED.length)
  for (const line of refused) assert.equal(line.step, 'iothub', `${String(line.topic)}: ${String(line.reason)}`)

  // The victim comes back: the honest will is queued for it; nothing forged is.
  const got: Received[] = []
  let first: Promise<Received[]> | undefined
  const back = await connect({
    port: hub.ports.mqtt as number,
    clientId: 'victim',
    password: sas('victim'),
    clean: false,
    beforeConnect: (c) => {
      c.on('message', (topic, payload, packet) => got.push({ topic, payload, qos: packet.qos, retain: packet.retain }))
      first = collect(c, 1, { timeoutMs: 15_000, filter: (m) => m.topic === 'status/honest' })
    },
  })
  t.after(() => back.endAsync())
  await first
  // A twin round trip: anything still queued would have been delivered before its answer.
  await back.subscribeAsync('$iothub/twin/res/#', { qos: 0 })
  const answer = collect(back, 1, { filter: (m) => m.topic.startsWith('$iothub/twin/res/200/') })
  await back.publishAsync('$iothub/twin/GET/?$rid=barrier', '')
  await answer
  const forged = got.filter((m) => m.payload.toString().includes('forged'))
  assert.deepEqual(forged.map((m) => m.topic), [], 'no forged message reached the victim')
  assert.ok(got.some((m) => m.topic === 'status/honest' && m.payload.toString() === 'offline'))
})
