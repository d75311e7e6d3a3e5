/**
 * Child process of test/e2e/sdk-dps.test.ts: the official DPS SDKs (azure-iot-provisioning-service,
 * azure-iot-provisioning-device + -mqtt, azure-iot-security-symmetric-key / -x509) and the device SDK
 * (azure-iot-device + MQTT), unmodified, as device code runs them against edgemq's DPS.
 *
 * Why a child: the provisioning transport has no option for a CA, so the hub CA comes from
 * NODE_EXTRA_CA_CERTS, which Node reads only at process start.
 *
 * Env: DPS_CS (service connection string), DPS_ID_SCOPE, X509_DIR (<id>.cert.pem/.key.pem of the
 * X.509 devices). Writes one JSON line of results to stdout; every failed assertion exits non-zero.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const require = createRequire(import.meta.url)

// ---- the parts of the SDKs this flow uses (CommonJS; described here, not `any`) ----
interface RegistrationResult {
  registrationId: string
  assignedHub: string
  deviceId: string
  status: string
  substatus: string
  etag: string
}
interface RegistrationClient {
  register(): Promise<RegistrationResult>
}
interface ProvisioningError extends Error {
  result?: { errorCode?: number; message?: string; trackingId?: string; timestampUtc?: string }
}
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device') as {
  ProvisioningDeviceClient: { create(host: string, idScope: string, transport: unknown, security: unknown): RegistrationClient }
}
const { Mqtt: ProvisioningMqtt } = require('azure-iot-provisioning-device-mqtt') as { Mqtt: new () => unknown }
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key') as { SymmetricKeySecurityClient: new (registrationId: string, key: string) => unknown }
const { X509Security } = require('azure-iot-security-x509') as { X509Security: new (registrationId: string, cert: { cert: string; key: string }) => unknown }

interface Enrollment {
  registrationId: string
  deviceId?: string
  etag?: string
  provisioningStatus?: string
  attestation: { type: string; symmetricKey?: { primaryKey: string; secondaryKey: string } }
  initialTwin?: unknown
  capabilities?: { iotEdge: boolean }
}
interface BulkResult {
  isSuccessful: boolean
  errors: { registrationId: string; errorCode: number; errorStatus: string }[]
}
/** The service SDK's promises resolve to the body and the HTTP response. */
interface HttpResult<T> {
  responseBody: T
}
interface ServiceClient {
  createOrUpdateIndividualEnrollment(e: unknown): Promise<HttpResult<Enrollment>>
  createOrUpdateEnrollmentGroup(e: unknown): Promise<HttpResult<{ enrollmentGroupId: string; attestation: Enrollment['attestation'] }>>
  getIndividualEnrollment(id: string): Promise<HttpResult<Enrollment>>
  getDeviceRegistrationState(id: string): Promise<HttpResult<RegistrationResult>>
  createIndividualEnrollmentQuery(spec: { query: string }): { next(): Promise<HttpResult<Enrollment[]>> }
  runBulkEnrollmentOperation(op: { mode: string; enrollments: unknown[] }, cb: (err: Error | null, result?: BulkResult) => void): void
  deleteIndividualEnrollment(id: string): Promise<unknown>
}
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service') as { ProvisioningServiceClient: { fromConnectionString(cs: string): ServiceClient } }

interface SdkMessage {
  data: Buffer
}
interface SdkDeviceClient {
  setOptions(o: Record<string, unknown>): Promise<unknown>
  open(): Promise<unknown>
  close(): Promise<unknown>
  sendEvent(m: SdkMessage): Promise<unknown>
  getTwin(): Promise<{ properties: { desired: Record<string, unknown> } }>
}
const { Client, Message } = require('azure-iot-device') as {
  Client: { fromConnectionString(cs: string, transport: unknown): SdkDeviceClient }
  Message: new (data: string) => SdkMessage
}
const { Mqtt } = require('azure-iot-device-mqtt') as { Mqtt: unknown }

const idScope = process.env.DPS_ID_SCOPE as string
const dpsCs = process.env.DPS_CS as string
const x509Dir = process.env.X509_DIR as string

/** Device code as the DPS docs write it: register, then connect to the assigned hub and send. */
async function registerAndSend(security: unknown, connection: (r: RegistrationResult) => string, body: object, x509?: { cert: string; key: string }) {
  const client = ProvisioningDeviceClient.create('localhost', idScope, new ProvisioningMqtt(), security)
  const r = await client.register()
  const device = Client.fromConnectionString(connection(r), Mqtt)
  if (x509) await device.setOptions(x509)
  await device.open()
  try {
    await device.sendEvent(new Message(JSON.stringify(body)))
    const twin = await device.getTwin()
    return { result: r, desired: twin.properties.desired }
  } finally {
    await device.close()
  }
}

async function registrationError(security: unknown): Promise<ProvisioningError> {
  const client = ProvisioningDeviceClient.create('localhost', idScope, new ProvisioningMqtt(), security)
  const err = await client.register().then(
    () => undefined,
    (e: ProvisioningError) => e,
  )
  assert.ok(err, 'registration should have failed')
  return err
}

async function main(): Promise<void> {
  const service = ProvisioningServiceClient.fromConnectionString(dpsCs)

  // The service SDK creates an individual and a group enrollment (symmetric keys generated by the DPS).
  const { responseBody: created } = await service.createOrUpdateIndividualEnrollment({
    registrationId: 'sdk-dev-1',
    attestation: { type: 'symmetricKey' },
    initialTwin: { tags: { site: 'lab' }, properties: { desired: { interval: 5 } } },
    capabilities: { iotEdge: false },
  })
  assert.equal(created.registrationId, 'sdk-dev-1')
  assert.equal(created.provisioningStatus, 'enabled')
  const key = created.attestation.symmetricKey?.primaryKey as string
  assert.match(key, /^[A-Za-z0-9+/]{43}=$/)
  const { responseBody: group } = await service.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'sdk-group', attestation: { type: 'symmetricKey' } })
  const groupKey = group.attestation.symmetricKey?.primaryKey as string
  await service.createOrUpdateIndividualEnrollment({ registrationId: 'sdk-off', attestation: { type: 'symmetricKey' }, provisioningStatus: 'disabled' })
  const listed = await service.createIndividualEnrollmentQuery({ query: '*' }).next()
  assert.deepEqual(
    listed.responseBody.map((e) => e.registrationId),
    ['sdk-dev-1', 'sdk-off', 'sdk-x509-1'],
  )
  // A bulk create: each enrollment on its own, an existing one reported as 409 without failing the rest.
  // Callback form: the SDK's promise form of this one call never settles (it calls back only when given a callback).
  const bulk = await new Promise<BulkResult>((resolve, reject) =>
    service.runBulkEnrollmentOperation(
      {
        mode: 'create',
        enrollments: [
          { registrationId: 'sdk-bulk-1', attestation: { type: 'symmetricKey' } },
          { registrationId: 'sdk-dev-1', attestation: { type: 'symmetricKey' } },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result as BulkResult)),
    ),
  )
  assert.equal(bulk.isSuccessful, false)
  assert.deepEqual(
    bulk.errors.map((e) => [e.registrationId, e.errorCode]),
    [['sdk-dev-1', 409201]],
  )
  await service.deleteIndividualEnrollment('sdk-bulk-1')

  // Individual symmetric key enrollment: register, connect to the assigned hub, send telemetry, see the initial twin.
  const one = await registerAndSend(new SymmetricKeySecurityClient('sdk-dev-1', key), (r) => `HostName=${r.assignedHub};DeviceId=${r.deviceId};SharedAccessKey=${key}`, { n: 1 })
  assert.equal(one.result.assignedHub, 'localhost')
  assert.equal(one.result.deviceId, 'sdk-dev-1')
  assert.equal(one.result.status, 'assigned')
  assert.equal(one.result.substatus, 'initialAssignment')
  assert.equal(one.desired.interval, 5)

  // Group enrollment: the device key is derived from the group key and the registration id.
  const derived = createHmac('sha256', Buffer.from(groupKey, 'base64')).update('sdk-group-dev-7').digest('base64')
  const two = await registerAndSend(new SymmetricKeySecurityClient('sdk-group-dev-7', derived), (r) => `HostName=${r.assignedHub};DeviceId=${r.deviceId};SharedAccessKey=${derived}`, { n: 2 })
  assert.equal(two.result.deviceId, 'sdk-group-dev-7')

  // X.509 individual enrollment (made by the parent through edgemq with the device's self-signed certificate).
  const x509 = { cert: readFileSync(join(x509Dir, 'sdk-x509-1.cert.pem'), 'utf8'), key: readFileSync(join(x509Dir, 'sdk-x509-1.key.pem'), 'utf8') }
  const three = await registerAndSend(new X509Security('sdk-x509-1', x509), (r) => `HostName=${r.assignedHub};DeviceId=${r.deviceId};x509=true`, { n: 3 }, x509)
  assert.equal(three.result.deviceId, 'sdk-x509-1')

  // X.509 group enrollment chained to the hub CA.
  const x509g = { cert: readFileSync(join(x509Dir, 'sdk-ca-dev.cert.pem'), 'utf8'), key: readFileSync(join(x509Dir, 'sdk-ca-dev.key.pem'), 'utf8') }
  const four = await registerAndSend(new X509Security('sdk-ca-dev', x509g), (r) => `HostName=${r.assignedHub};DeviceId=${r.deviceId};x509=true`, { n: 4 }, x509g)
  assert.equal(four.result.deviceId, 'sdk-ca-dev')

  // Re-registration keeps the device's data (default reprovision policy: migrate).
  const again = await ProvisioningDeviceClient.create('localhost', idScope, new ProvisioningMqtt(), new SymmetricKeySecurityClient('sdk-dev-1', key)).register()
  assert.equal(again.substatus, 'deviceDataMigrated')

  // Refusals carry DPS's error body; the broker keeps serving (the registrations above and below still work).
  const wrongKey = await registrationError(new SymmetricKeySecurityClient('sdk-dev-1', Buffer.alloc(32, 7).toString('base64')))
  assert.equal(wrongKey.name, 'UnauthorizedError')
  assert.equal(wrongKey.result?.errorCode, 401002)
  assert.ok(wrongKey.result?.trackingId && wrongKey.result.timestampUtc)
  const unknown = await registrationError(new SymmetricKeySecurityClient('nobody-here', key))
  assert.equal(unknown.result?.errorCode, 401002)
  const { responseBody: off } = await service.getIndividualEnrollment('sdk-off')
  const disabled = await registrationError(new SymmetricKeySecurityClient('sdk-off', off.attestation.symmetricKey?.primaryKey as string))
  assert.equal(disabled.result?.errorCode, 401002)
  assert.match(disabled.result?.message ?? '', /disabled/)

  // The service SDK reads registration states; an unknown one is 404.
  const { responseBody: state } = await service.getDeviceRegistrationState('sdk-dev-1')
  assert.equal(state.assignedHub, 'localhost')
  const missing = await service.getDeviceRegistrationState('never-registered').then(
    () => undefined,
    (e: Error & { responseBody?: string; response?: { statusCode?: number } }) => e,
  )
  // The SDK names only IoT Hub's string codes; DPS's numeric one stays in the body, as against Azure.
  assert.equal(missing?.response?.statusCode, 404)
  assert.equal(JSON.parse(missing?.responseBody ?? '{}').errorCode, 404202)

  const last = await ProvisioningDeviceClient.create('localhost', idScope, new ProvisioningMqtt(), new SymmetricKeySecurityClient('sdk-group-dev-8', createHmac('sha256', Buffer.from(groupKey, 'base64')).update('sdk-group-dev-8').digest('base64'))).register()
  assert.equal(last.status, 'assigned')
  process.stdout.write(JSON.stringify({ ok: true }) + '\n')
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
