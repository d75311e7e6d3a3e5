// The `filter` module of examples/deployment.json, written against the official Node SDK as a
// real IoT Edge module is: messages on input "in1" whose "t" is above the module twin's desired
// "threshold" (default 30) go out on output "alerts". Run it without a device:
//   edgemq deployment apply examples/deployment.json
//   edgemq module run --device edge-gateway --module filter -- node examples/filter.js
//   edgemq module send-input --device edge-gateway --module filter --input in1 --data '{"t": 40}'
//   edgemq monitor --module filter --output-name alerts
import device from 'azure-iot-device'
import deviceMqtt from 'azure-iot-device-mqtt'

const { ModuleClient, Message } = device
const { Mqtt } = deviceMqtt

const client = await ModuleClient.fromEnvironment(Mqtt)
let threshold = 30

client.on('error', (err) => console.error(`filter: ${err.message}`))
client.on('inputMessage', (input, msg) => {
  client.complete(msg, () => undefined)
  if (input !== 'in1') return
  let body
  try {
    body = JSON.parse(msg.getData().toString())
  } catch {
    console.error('filter: input is not JSON; dropped')
    return
  }
  if (typeof body.t !== 'number' || body.t <= threshold) return
  const alert = new Message(JSON.stringify({ ...body, threshold }))
  alert.contentType = 'application/json'
  alert.contentEncoding = 'utf-8'
  alert.properties.add('alert', 'true')
  client.sendOutputEvent('alerts', alert, (err) => {
    if (err) console.error(`filter: sending the alert failed: ${err.message}`)
    else console.log(`filter: t=${body.t} > ${threshold}: alert sent`)
  })
})

await client.open()
const twin = await client.getTwin()
const apply = (desired) => {
  if (typeof desired.threshold === 'number') threshold = desired.threshold
}
apply(twin.properties.desired)
twin.on('properties.desired', apply)
console.log(`filter: running (threshold ${threshold})`)
process.once('SIGINT', () => void client.close().then(() => process.exit(0)))
process.once('SIGTERM', () => void client.close().then(() => process.exit(0)))
