/**
 * Runs the Eclipse Paho MQTT 3.1.1 interoperability suite (eclipse/paho.mqtt.testing,
 * `interoperability/client_test.py`, not shipped here) against an in-process edgemq hub.
 *
 *   npm run conformance -- --suite /path/to/paho.mqtt.testing/interoperability [--tls]
 *
 * The suite's clients connect with no credentials and client ids such as "clean retained". IoT Hub
 * (and so edgemq) requires a registered identity and a SAS token, so a small proxy in front of the
 * broker rewrites only the CONNECT packet: the client id becomes a valid device id, and the IoT Hub
 * username and a SAS token are added. Every other byte passes through untouched. The hub's policy
 * is allow-all (connect, publish and subscribe on every non-`$` topic).
 */
import { spawn } from 'node:child_process'
import { createServer, connect as netConnect, type Socket } from 'node:net'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import mqttPacket from 'mqtt-packet'

import { startHub } from '../src/emulator/index.js'

const { values } = parseArgs({ options: { suite: { type: 'string' }, tls: { type: 'boolean' } } })
const suite = values.suite ?? process.env.PAHO_INTEROP
if (!suite || !existsSync(join(suite, 'client_test.py'))) {
  console.error('conformance: give the suite folder: --suite <paho.mqtt.testing>/interoperability (client_test.py is there)')
  process.exit(2)
}

/** IoT Hub device ids: letters, digits and -.%_*?!(),:=@$' — the suite's ids map onto that. */
const deviceIdOf = (clientId: string) => clientId.replace(/[^A-Za-z0-9\-.%_*?!(),:=@$']/g, '_')

const hub = await startHub({ hubName: 'edgemq', policy: 'allow-all', ports: { mqtts: null, rest: null } })
const sas = new Map<string, string>()
for (const id of ['myclientid', 'myclientid2', 'clean retained'].map(deviceIdOf)) {
  await hub.createDevice(id)
  sas.set(id, await hub.sas(id, undefined, { durationSecs: 3600 }))
}

function proxy(downstream: Socket): void {
  const upstream = netConnect(hub.ports.mqtt as number, '127.0.0.1')
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let buffered = Buffer.alloc(0)
  let first = true
  const passRaw = () => {
    first = false
    upstream.write(buffered)
    downstream.pipe(upstream)
  }
  parser.on('packet', (packet: mqttPacket.Packet) => {
    if (!first) return
    first = false
    if (packet.cmd !== 'connect') return passRaw()
    const c = packet as mqttPacket.IConnectPacket
    const deviceId = c.clientId ? deviceIdOf(c.clientId) : ''
    const rewritten: mqttPacket.IConnectPacket = { ...c, clientId: deviceId, username: `${hub.hostName}/${deviceId}/?api-version=2021-04-12`, password: Buffer.from(sas.get(deviceId) ?? '') }
    const consumed = mqttPacket.generate(c).length
    upstream.write(mqttPacket.generate(rewritten))
    upstream.write(buffered.subarray(consumed))
    downstream.pipe(upstream)
  })
  parser.on('error', () => {
    if (first) passRaw()
  })
  const onData = (chunk: Buffer) => {
    if (!first) return downstream.off('data', onData)
    buffered = Buffer.concat([buffered, chunk])
    parser.parse(chunk)
    if (!first) downstream.off('data', onData)
  }
  downstream.on('data', onData)
  upstream.pipe(downstream)
  const end = () => {
    downstream.destroy()
    upstream.destroy()
  }
  upstream.on('error', end).on('close', end)
  downstream.on('error', end).on('close', end)
}

const server = createServer(proxy)
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const port = (server.address() as { port: number }).port
console.log(`conformance: edgemq on ${hub.ports.mqtt}, credential proxy on ${port}; running client_test.py`)

const code = await new Promise<number>((resolve) => {
  const py = spawn('python3', ['client_test.py', '-h', '127.0.0.1', '-p', String(port)], { cwd: suite, stdio: 'inherit' })
  py.on('exit', (c) => resolve(c ?? 1))
})
server.close()
await hub.close()
process.exit(code)
