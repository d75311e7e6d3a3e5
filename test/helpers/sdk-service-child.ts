/**
 * Child process of test/e2e/sdk-service.test.ts: the official service SDK (azure-iothub) and device SDK
 * (azure-iot-device + MQTT) exactly as a user's test would run them against `startHub()`.
 *
 * Why a child: azure-iothub always dials https://<HostName>:443 and has no public option for a CA, so
 * the hub CA must come from NODE_EXTRA_CA_CERTS, which Node reads only at process start.
 *
 * The parent passes the service connection string in HUB_SERVICE_CS and answers one IPC request:
 * {type: 'cs', deviceId, moduleId?} → the connection string the hub gives for that identity.
 * Prints nothing on success; every failed assertion exits non-zero with the reason on stderr.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

// ---- the parts of the SDKs this flow uses (they are CommonJS; described here, not `any`) ----
interface AuthJson {
  type: string
  symmetricKey: { primaryKey: string; secondaryKey: string }
}
interface SdkDevice {
  deviceId: string
  status: string
  etag: string
  authentication: AuthJson
  capabilities?: { iotEdge: boolean }
}
interface SdkModule {
  deviceId: string
  moduleId: string
  authentication: AuthJson
}
interface SdkServiceTwin {
  deviceId: string
  etag: string
  properties: { desired: Record<string, unknown>; reported: Record<string, unknown> }
  update(patch: unknown): Promise<{ responseBody: SdkServiceTwin }>
}
interface Result<T> {
  responseBody: T
}
interface SdkRegistry {
  create(d: { deviceId: string; status?: string }): Promise<Result<SdkDevice>>
  get(id: string): Promise<Result<SdkDevice>>
  list(): Promise<Result<SdkDevice[]>>
  update(d: { deviceId: string; status?: string }): Promise<Result<SdkDevice>>
  delete(id: string): Promise<unknown>
  addModule(m: { deviceId: string; moduleId: string }): Promise<Result<SdkModule>>
  getModule(d: string, m: string): Promise<Result<SdkModule>>
  getModulesOnDevice(d: string): Promise<Result<SdkModule[]>>
  removeModule(d: string, m: string): Promise<unknown>
  getTwin(id: string): Promise<Result<SdkServiceTwin>>
  getModuleTwin(d: string, m: string): Promise<Result<SdkServiceTwin>>
  updateTwin(id: string, patch: unknown, etag: string): Promise<Result<SdkServiceTwin>>
}
interface MethodParams {
  methodName: string
  payload?: unknown
  responseTimeoutInSeconds?: number
}
interface SdkServiceClient {
  invokeDeviceMethod(deviceId: string, params: MethodParams): Promise<{ result: { status: number; payload: unknown } }>
  invokeDeviceMethod(deviceId: string, moduleId: string, params: MethodParams): Promise<{ result: { status: number; payload: unknown } }>
}
const service = require('azure-iothub') as {
  Registry: { fromConnectionString(cs: string): SdkRegistry }
  Client: { fromConnectionString(cs: string): SdkServiceClient }
}

interface SdkMessage {
  data: Buffer
}
interface SdkDeviceTwin {
  on(ev: 'properties.desired', cb: (patch: Record<string, unknown>) => void): void
}
interface SdkMethodResponse {
  send(status: number, payload: unknown): Promise<void>
}
type MethodHandler = (req: { payload: unknown }, res: SdkMethodResponse) => void
interface SdkDeviceClient {
  setOptions(o: { ca: string }): Promise<unknown>
  open(): Promise<unknown>
  close(): Promise<unknown>
  sendEvent(m: SdkMessage): Promise<unknown>
  getTwin(): Promise<SdkDeviceTwin>
  onDeviceMethod?(name: string, cb: MethodHandler): void
  onMethod?(name: string, cb: MethodHandler): void
}
const device = require('azure-iot-device') as {
  Client: { fromConnectionString(cs: string, transport: unknown): SdkDeviceClient }
  ModuleClient: { fromConnectionString(cs: string, transport: unknown): SdkDeviceClient }
  Message: new (data: string) => SdkMessage
}
const { Mqtt } = require('azure-iot-device-mqtt') as { Mqtt: unknown }

// ---- IPC with the parent (which owns the hub) ----
function askConnectionString(deviceId: string, moduleId?: string): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown) => {
      const msg = m as { type?: string; deviceId?: string; moduleId?: string; cs?: string }
      if (msg.type === 'cs' && msg.deviceId === deviceId && msg.moduleId === moduleId && msg.cs) {
        process.off('message', onMessage)
        resolve(msg.cs)
      }
    }
    process.on('message', onMessage)
    process.send?.({ type: 'cs', deviceId, moduleId })
  })
}

async function rejectsWith(p: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(p, (err: Error) => {
    assert.equal(err.name, name, `expected ${name}, got ${err.name}: ${err.message}`)
    return true
  })
}

/** The device SDK subscribes to methods lazily after onDeviceMethod: retry while the device is "not online". */
async function invokeUntilOnline(call: () => Promise<{ result: { status: number; payload: unknown } }>) {
  for (let i = 0; ; i++) {
    try {
      return await call()
    } catch (err) {
      if (i > 50 || !/not online/i.test((err as Error).message)) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

async function main(): Promise<void> {
  const serviceCs = process.env.HUB_SERVICE_CS as string
  const ca = readFileSync(process.env.NODE_EXTRA_CA_CERTS as string, 'utf8')
  assert.match(serviceCs, /^HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=/)
  const registry = service.Registry.fromConnectionString(serviceCs)
  const client = service.Client.fromConnectionString(serviceCs)

  // Registry: create / get / list / update / errors.
  const created = (await registry.create({ deviceId: 'sdk-thermostat' })).responseBody
  assert.equal(created.deviceId, 'sdk-thermostat')
  assert.equal(created.authentication.type, 'sas')
  assert.ok(created.authentication.symmetricKey.primaryKey.length >= 24, 'the hub generated keys')
  assert.equal((await registry.get('sdk-thermostat')).responseBody.status, 'enabled')
  assert.ok((await registry.list()).responseBody.some((d) => d.deviceId === 'sdk-thermostat'))
  await rejectsWith(registry.create({ deviceId: 'sdk-thermostat' }), 'DeviceAlreadyExistsError')
  await rejectsWith(registry.get('no-such-device'), 'DeviceNotFoundError')
  const mod = (await registry.addModule({ deviceId: 'sdk-thermostat', moduleId: 'sensor' })).responseBody
  assert.equal(mod.moduleId, 'sensor')
  assert.equal((await registry.getModule('sdk-thermostat', 'sensor')).responseBody.authentication.symmetricKey.primaryKey, mod.authentication.symmetricKey.primaryKey)
  assert.deepEqual((await registry.getModulesOnDevice('sdk-thermostat')).responseBody.map((m) => m.moduleId), ['sensor'])

  // The device SDK connects with the connection string the hub gives (GatewayHostName=localhost, port 8883).
  const deviceCs = await askConnectionString('sdk-thermostat')
  assert.match(deviceCs, /;SharedAccessKey=.*;GatewayHostName=localhost$/)
  assert.ok(deviceCs.includes(`SharedAccessKey=${created.authentication.symmetricKey.primaryKey}`))
  const dev = device.Client.fromConnectionString(deviceCs, Mqtt)
  await dev.setOptions({ ca })
  await dev.open()
  const moduleCs = await askConnectionString('sdk-thermostat', 'sensor')
  const modClient = device.ModuleClient.fromConnectionString(moduleCs, Mqtt)
  await modClient.setOptions({ ca })
  await modClient.open()
  try {
    await dev.sendEvent(new device.Message(JSON.stringify({ temperature: 21.5 })))

    // Direct method: service SDK → device SDK → back.
    let seen: unknown
    dev.onDeviceMethod?.('reboot', (req, res) => {
      seen = req.payload
      void res.send(200, { rebooted: true })
    })
    const r = await invokeUntilOnline(() => client.invokeDeviceMethod('sdk-thermostat', { methodName: 'reboot', payload: { delay: 1 }, responseTimeoutInSeconds: 10 }))
    assert.deepEqual(r.result, { status: 200, payload: { rebooted: true } })
    assert.deepEqual(seen, { delay: 1 })

    // Module method.
    modClient.onMethod?.('calibrate', (req, res) => void res.send(201, { calibrated: req.payload }))
    const rm = await invokeUntilOnline(() => client.invokeDeviceMethod('sdk-thermostat', 'sensor', { methodName: 'calibrate', payload: 3, responseTimeoutInSeconds: 10 }))
    assert.deepEqual(rm.result, { status: 201, payload: { calibrated: 3 } })

    // Desired property: service SDK twin update (etag, If-Match) → device SDK sees it.
    const deviceTwin = await dev.getTwin()
    const desired = new Promise<Record<string, unknown>>((resolve) => deviceTwin.on('properties.desired', (p) => p.telemetryInterval === 7 && resolve(p)))
    const twin = (await registry.getTwin('sdk-thermostat')).responseBody
    assert.equal(twin.deviceId, 'sdk-thermostat')
    const stale = twin.etag
    const updated = (await registry.updateTwin('sdk-thermostat', { properties: { desired: { telemetryInterval: 7 } }, tags: { room: 'lab' } }, twin.etag)).responseBody
    assert.equal(updated.properties.desired.telemetryInterval, 7)
    assert.notEqual(updated.etag, stale)
    const patch = await desired
    assert.equal(patch.telemetryInterval, 7)
    // The stale etag is refused (412 → InvalidEtagError); the Twin object's own update works.
    await rejectsWith(registry.updateTwin('sdk-thermostat', { properties: { desired: { telemetryInterval: 8 } } }, stale), 'InvalidEtagError')
    const moduleTwin = (await registry.getModuleTwin('sdk-thermostat', 'sensor')).responseBody
    await moduleTwin.update({ properties: { desired: { gain: 2 } } })
    assert.equal((await registry.getModuleTwin('sdk-thermostat', 'sensor')).responseBody.properties.desired.gain, 2)

    // A method nobody answers: 504 → GatewayTimeoutError after responseTimeoutInSeconds (5 s is IoT Hub's minimum).
    await rejectsWith(client.invokeDeviceMethod('sdk-thermostat', { methodName: 'unhandled', responseTimeoutInSeconds: 5 }), 'GatewayTimeoutError')
    // A wrong key: 401 → UnauthorizedError.
    const forged = service.Registry.fromConnectionString(serviceCs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 9).toString('base64')}`))
    await rejectsWith(forged.get('sdk-thermostat'), 'UnauthorizedError')
  } finally {
    await modClient.close()
    await dev.close()
  }

  // Update and delete.
  assert.equal((await registry.update({ deviceId: 'sdk-thermostat', status: 'disabled' })).responseBody.status, 'disabled')
  await registry.removeModule('sdk-thermostat', 'sensor')
  await registry.delete('sdk-thermostat')
  await rejectsWith(registry.get('sdk-thermostat'), 'DeviceNotFoundError')
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
