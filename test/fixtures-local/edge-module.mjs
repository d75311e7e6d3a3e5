// A small IoT Edge module written against the official Node SDK exactly as a real module would be
// (ModuleClient.fromEnvironment(Mqtt)), for test/e2e/sdk-modules.test.ts. It reports what happens as
// JSON lines on stdout and takes commands as JSON lines on stdin:
//   {"cmd": "send", "output": "alerts", "body": {...}, "props": {"k": "v"}}  → sendOutputEvent
//   {"cmd": "exit", "code": 7}                                               → close and exit
import { createInterface } from 'node:readline'

import device from 'azure-iot-device'
import deviceMqtt from 'azure-iot-device-mqtt'

const { ModuleClient, Message } = device
const { Mqtt } = deviceMqtt
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const moduleId = process.env.IOTEDGE_MODULEID ?? /ModuleId=([^;]+)/.exec(process.env.EdgeHubConnectionString ?? '')?.[1]
const mode = process.env.IOTEDGE_WORKLOADURI ? 'workload' : 'connection-string'

let client
try {
  client = await ModuleClient.fromEnvironment(Mqtt)
} catch (err) {
  say({ event: 'error', where: 'fromEnvironment', message: err.message })
  process.exit(3)
}
client.on('error', (err) => say({ event: 'error', message: err.message }))
client.on('disconnect', () => say({ event: 'disconnect' }))
client.on('inputMessage', (input, msg) => {
  const props = {}
  for (const p of msg.properties.propertyList) props[p.key] = p.value
  say({ event: 'input', input, body: msg.getData().toString(), props })
  client.complete(msg, () => undefined)
})
client.onMethod('echo', (req, res) => {
  say({ event: 'method', name: 'echo' })
  res.send(200, { echo: req.payload, module: moduleId, mode }, () => undefined)
})

try {
  await client.open()
  const twin = await client.getTwin()
  twin.on('properties.desired', (patch) => say({ event: 'desired', patch }))
  say({ event: 'ready', module: moduleId, mode, desired: twin.properties.desired, role: process.env.MODULE_ROLE ?? null })
} catch (err) {
  say({ event: 'error', where: 'open', message: err.message })
  process.exit(4)
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  const c = JSON.parse(line)
  if (c.cmd === 'send') {
    const m = new Message(JSON.stringify(c.body))
    m.contentType = 'application/json'
    m.contentEncoding = 'utf-8'
    for (const [k, v] of Object.entries(c.props ?? {})) m.properties.add(k, String(v))
    try {
      await client.sendOutputEvent(c.output, m)
      say({ event: 'sent', output: c.output, body: c.body })
    } catch (err) {
      say({ event: 'error', where: 'send', message: err.message })
    }
  } else if (c.cmd === 'exit') {
    await client.close().catch(() => undefined)
    process.exit(c.code ?? 0)
  }
})
