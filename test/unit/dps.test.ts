/**
 * The Device Provisioning Service's parts (issue 19): the group key derivation (checked against
 * crypto-js and DPS's documented example), the MQTT topic and username grammar, the pipeline's DPS
 * step, response isolation between two registration connections on real sockets, attestation
 * refusals, the reprovision policies, and the service REST API's error body.
 */
import assert from 'node:assert/strict'
import { request } from 'node:https'
import { parse as parseQuery } from 'node:querystring'
import { after, before, describe, test } from 'node:test'

import CryptoJS from 'crypto-js'
import type { MqttClient } from 'mqtt'

import { decideForward, decidePublish, decideSubscribe } from '../../src/broker/pipeline.js'
import type { Actor } from '../../src/broker/session.js'
import { Dps, deriveDeviceKey, formatDpsResponseTopic, parseDpsTopic, parseDpsUsername, type TwinWriter } from '../../src/dps/index.js'
import { startHub, type Hub } from '../../src/emulator/index.js'
import { EdgeMqError } from '../../src/errors.js'
import { topOf } from '../../src/cli/flags.js'
import { buildSasToken } from '../../src/sas/index.js'
import { closed, connect, nextMessage, subscribeGranted, subscribeOk, type Received } from '../helpers/mqtt.js'

describe('group key derivation', () => {
  test('matches an independent HMAC (crypto-js) and the example in the DPS docs', () => {
    const groupKey = '8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=='
    const regId = 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6'
    const oracle = CryptoJS.HmacSHA256(regId, CryptoJS.enc.Base64.parse(groupKey)).toString(CryptoJS.enc.Base64)
    assert.equal(deriveDeviceKey(groupKey, regId), oracle)
    assert.equal(deriveDeviceKey(groupKey, regId), 'Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=')
    assert.throws(() => deriveDeviceKey('not base64', regId), /not valid base64/)
  })
})

describe('DPS MQTT grammar', () => {
  test('the username azure-iot-provisioning-device-mqtt sends', () => {
    assert.deepEqual(parseDpsUsername('0ne00ABCDEF/registrations/dev-1/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1'), {
      idScope: '0ne00ABCDEF',
      registrationId: 'dev-1',
      apiVersion: '2019-03-31',
    })
    // IoT Hub usernames are not DPS ones.
    assert.equal(parseDpsUsername('edgemq.azure-devices.net/registrations/?api-version=2021-04-12'), undefined)
    assert.equal(parseDpsUsername('edgemq.azure-devices.net/dev-1/?api-version=2021-04-12'), undefined)
  })

  test('request topics parse; anything else is invalid with a reason', () => {
    assert.deepEqual(parseDpsTopic('$dps/registrations/PUT/iotdps-register/?$rid=7f2c'), { kind: 'dps-register', rid: '7f2c' })
    assert.deepEqual(parseDpsTopic('$dps/registrations/GET/iotdps-get-operationstatus/?$rid=9&operationId=4.abc.def'), { kind: 'dps-operation-status', rid: '9', operationId: '4.abc.def' })
    assert.match((parseDpsTopic('$dps/registrations/PUT/iotdps-register/?x=1') as { reason: string }).reason, /without \$rid/)
    assert.match((parseDpsTopic('$dps/registrations/GET/iotdps-get-operationstatus/?$rid=9') as { reason: string }).reason, /without operationId/)
    assert.equal(parseDpsTopic('devices/d/messages/events/').kind, 'invalid')
  })

  test('a response topic reads back the way the device SDK reads it', () => {
    const topic = formatDpsResponseTopic(202, '5a1e-77', 3)
    assert.equal(topic, '$dps/registrations/res/202/?$rid=5a1e-77&retry-after=3')
    // azure-iot-provisioning-device-mqtt: /^\$dps\/registrations\/res\/(.*)\/\?(.*)$/ then querystring.parse.
    const m = /^\$dps\/registrations\/res\/(.*)\/\?(.*)$/.exec(topic) as RegExpExecArray
    assert.equal(m[1], '202')
    assert.deepEqual({ ...parseQuery(m[2]) }, { $rid: '5a1e-77', 'retry-after': '3' })
  })
})

describe('the pipeline for DPS connections', () => {
  const dpsActor: Actor = { identity: { clientId: 'reg-a', deviceId: 'reg-a' }, authz: undefined, dps: { registrationId: 'reg-a', idScope: '0ne00000000', sas: 'x' } }
  const limits = { maxMessageSize: 1024 }
  const pub = (actor: Actor | undefined, topic: string) => decidePublish({ actor, origin: 'client', topic, qos: 1, payloadBytes: 10 }, limits)

  test('a registration connection sends DPS requests and nothing else', () => {
    assert.equal(pub(dpsActor, '$dps/registrations/PUT/iotdps-register/?$rid=1').kind, 'answered')
    for (const topic of ['devices/reg-a/messages/events/', 'telemetry', '$iothub/twin/GET/?$rid=1', '$dps/registrations/res/200/?$rid=1']) {
      const v = pub(dpsActor, topic)
      assert.equal(v.kind, 'deny', topic)
      assert.equal(v.step, 'dps', topic)
    }
  })

  test('nobody else publishes or subscribes on $dps/', () => {
    const device: Actor = { identity: { clientId: 'd1', deviceId: 'd1' }, authz: undefined }
    const v = pub(device, '$dps/registrations/PUT/iotdps-register/?$rid=1')
    assert.equal(v.kind, 'deny')
    assert.equal(v.step, 'dps')
    assert.equal(decideSubscribe({ actor: device, filter: '$dps/registrations/res/#', qos: 1 }).kind, 'deny')
  })

  test('its response filter is served from its private namespace; other filters are refused', () => {
    const v = decideSubscribe({ actor: dpsActor, filter: '$dps/registrations/res/#', qos: 1 })
    assert.deepEqual(v, { kind: 'rewritten', step: 'dps', value: { topic: '$edgemq/reg-a/$dps/registrations/res/#', qos: 1 } })
    for (const filter of ['#', 'devices/reg-a/messages/devicebound/#', '$edgemq/reg-b/$dps/registrations/res/#']) assert.equal(decideSubscribe({ actor: dpsActor, filter, qos: 0 }).kind, 'deny', filter)
    assert.deepEqual(decideForward(dpsActor, 'reg-a', '$edgemq/reg-a/$dps/registrations/res/200/?$rid=1'), { kind: 'rewritten', step: 'iothub', value: '$dps/registrations/res/200/?$rid=1' })
    assert.equal(decideForward(dpsActor, 'reg-a', '$edgemq/reg-b/$dps/registrations/res/200/?$rid=1').kind, 'deny')
    assert.equal(decideForward(dpsActor, 'reg-a', 'some/user/topic').kind, 'deny')
  })
})

describe('DPS on a running hub', () => {
  let hub: Hub
  let dps: Dps
  let groupKey: string
  const writeTwin: TwinWriter = (key, update, replace) => hub.broker.iothub.updateTwin(key, update, { replace })

  before(async () => {
    hub = await startHub({ ports: { mqtt: null, mqtts: 0, rest: 0 } })
    dps = hub.broker.dps.service()
    const g = await dps.putEnrollmentGroup({ enrollmentGroupId: 'iso', attestation: { type: 'symmetricKey' } }, { mode: 'create' })
    groupKey = g.attestation.symmetricKey?.primaryKey as string
  })
  after(() => hub?.close())

  const username = (id: string) => `${dps.idScope}/registrations/${id}/api-version=2019-03-31`
  const dpsClient = (id: string, key = deriveDeviceKey(groupKey, id)) =>
    connect({ port: hub.ports.mqtts as number, clientId: id, username: username(id), password: dps.registrationSas(id, key), tls: { ca: hub.caPem } })
  const register = (c: MqttClient, id: string, rid: string) => c.publishAsync(`$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, JSON.stringify({ registrationId: id }), { qos: 1 })
  const poll = (c: MqttClient, rid: string, operationId: string) => c.publishAsync(`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operationId}`, ' ', { qos: 1 })
  const body = (m: Received) => JSON.parse(m.payload.toString()) as { operationId: string; status: string; errorCode?: number; registrationState?: { deviceId: string; status: string } }

  test('two registration connections see only their own responses, and cannot reach each other\'s', async () => {
    const a = await dpsClient('iso-a')
    const b = await dpsClient('iso-b')
    try {
      await subscribeOk(a, '$dps/registrations/res/#', 1)
      await subscribeOk(b, '$dps/registrations/res/#', 1)
      // B asks for A's private namespace and A's wildcard: refused.
      assert.deepEqual(await subscribeGranted(b, ['$edgemq/iso-a/$dps/registrations/res/#', '$edgemq/#', '#'], 1), [128, 128, 128])
      const bFirst = nextMessage(b)
      const aAccepted = nextMessage(a)
      await register(a, 'iso-a', 'a1')
      const accepted = await aAccepted
      assert.match(accepted.topic, /^\$dps\/registrations\/res\/202\/\?\$rid=a1&retry-after=\d+$/)
      const op = body(accepted)
      assert.equal(op.status, 'assigning')
      // B polls A's operation: as unknown to B as a made-up one.
      await poll(b, 'b0', op.operationId)
      const bSaw = await bFirst
      assert.match(bSaw.topic, /^\$dps\/registrations\/res\/404\/\?\$rid=b0$/, 'B\'s first message is its own answer, not A\'s 202')
      assert.equal(body(bSaw).errorCode, 404203)
      const aAssigned = nextMessage(a)
      await poll(a, 'a2', op.operationId)
      const done = body(await aAssigned)
      assert.equal(done.status, 'assigned')
      assert.equal(done.registrationState?.deviceId, 'iso-a')
      // A registration connection is nothing else: a telemetry publish closes it.
      const bClosed = closed(b)
      b.publish('devices/iso-b/messages/events/', 'x', { qos: 1 })
      await bClosed
    } finally {
      await a.endAsync()
      await b.endAsync(true)
    }
  })

  test('a wrong key answers 401002 in DPS\'s error body; the connection and the broker keep serving', async () => {
    const c = await dpsClient('iso-c', Buffer.alloc(32, 1).toString('base64'))
    try {
      await subscribeOk(c, '$dps/registrations/res/#', 1)
      const refused = nextMessage(c)
      await register(c, 'iso-c', 'c1')
      const m = await refused
      assert.match(m.topic, /^\$dps\/registrations\/res\/401\/\?\$rid=c1$/)
      const err = JSON.parse(m.payload.toString()) as { errorCode: number; trackingId: string; message: string; timestampUtc: string }
      assert.equal(err.errorCode, 401002)
      // Which enrollments exist is not revealed to a device that cannot prove itself.
      assert.match(err.message, /no enrollment for registration "iso-c" accepts its credentials/)
      assert.ok(err.trackingId.length > 0)
      assert.ok(!Number.isNaN(Date.parse(err.timestampUtc)))
      // The broker keeps serving: a good registration right after is accepted.
      const good = await dpsClient('iso-d')
      try {
        await subscribeOk(good, '$dps/registrations/res/#', 1)
        const ok202 = nextMessage(good)
        await register(good, 'iso-d', 'd1')
        assert.match((await ok202).topic, /\/202\//)
      } finally {
        await good.endAsync()
      }
    } finally {
      await c.endAsync()
    }
  })

  test('a CONNECT naming another id scope, or a client id other than the registration id, is refused', async () => {
    const other = connect({ port: hub.ports.mqtts as number, clientId: 'iso-e', username: `0ne99999999/registrations/iso-e/api-version=2019-03-31`, password: dps.registrationSas('iso-e', deriveDeviceKey(groupKey, 'iso-e')), tls: { ca: hub.caPem } })
    await assert.rejects(other, (err: { code: number }) => err.code === 5)
    const mismatch = connect({ port: hub.ports.mqtts as number, clientId: 'iso-f', username: username('iso-e'), password: 'x', tls: { ca: hub.caPem } })
    await assert.rejects(mismatch, (err: { code: number }) => err.code === 2)
  })

  test('attestation: disabled enrollment and group, unknown registration, wrong id scope → 401002', async () => {
    const e = await dps.putEnrollment({ registrationId: 'off-1', attestation: { type: 'symmetricKey' }, provisioningStatus: 'disabled' }, { mode: 'create' })
    const key = e.attestation.symmetricKey?.primaryKey as string
    const unauthorized = (re: RegExp) => (err: EdgeMqError) => err.code === 'UNAUTHORIZED' && err.wireCode === '401002' && re.test(err.message)
    await assert.rejects(dps.attest({ registrationId: 'off-1', idScope: dps.idScope, sas: dps.registrationSas('off-1', key) }), unauthorized(/enrollment "off-1" is disabled/))
    await assert.rejects(dps.attest({ registrationId: 'ghost', idScope: dps.idScope, sas: dps.registrationSas('ghost', key) }), unauthorized(/no enrollment for registration "ghost"/))
    await assert.rejects(dps.attest({ registrationId: 'off-1', idScope: '0ne00000000', sas: dps.registrationSas('off-1', key) }), unauthorized(/id scope/))
    const g = await dps.putEnrollmentGroup({ enrollmentGroupId: 'off-group', attestation: { type: 'symmetricKey' }, provisioningStatus: 'disabled' }, { mode: 'create' })
    const gk = deriveDeviceKey(g.attestation.symmetricKey?.primaryKey as string, 'off-member')
    await assert.rejects(dps.attest({ registrationId: 'off-member', idScope: dps.idScope, sas: dps.registrationSas('off-member', gk) }), unauthorized(/enrollment group "off-group" is disabled/))
  })

  test('reprovisioning: migrate keeps the device data, reset restores the initial twin, registration etags change', async () => {
    const e = await dps.putEnrollment(
      { registrationId: 'rp-1', attestation: { type: 'symmetricKey' }, initialTwin: { tags: { v: 1 }, properties: { desired: { mode: 'a' } } }, capabilities: { iotEdge: true } },
      { mode: 'create' },
    )
    const sas = dps.registrationSas('rp-1', e.attestation.symmetricKey?.primaryKey as string)
    const attested = async () => dps.attest({ registrationId: 'rp-1', idScope: dps.idScope, sas })
    const first = await dps.allocate(await attested(), writeTwin)
    assert.equal(first.substatus, 'initialAssignment')
    const device = await hub.context.store.getDevice('rp-1')
    assert.equal(device?.edge, true)
    assert.equal(device?.primaryKey, e.attestation.symmetricKey?.primaryKey)
    assert.deepEqual((await hub.getTwin('rp-1')).tags, { v: 1 })
    await hub.updateTwin('rp-1', { tags: { v: 2 }, desired: { mode: 'b' } })

    const migrated = await dps.allocate(await attested(), writeTwin)
    assert.equal(migrated.substatus, 'deviceDataMigrated')
    assert.equal(migrated.createdDateTimeUtc, first.createdDateTimeUtc)
    assert.notEqual(migrated.etag, first.etag)
    assert.equal((await hub.getTwin('rp-1')).tags?.v, 2)

    await dps.putEnrollment({ reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false } }, { mode: 'update', id: 'rp-1' })
    const reset = await dps.allocate(await attested(), writeTwin)
    assert.equal(reset.substatus, 'deviceDataReset')
    const twin = await hub.getTwin('rp-1')
    assert.deepEqual(twin.tags, { v: 1 })
    assert.equal((twin.properties.desired as { mode?: string }).mode, 'a')
    assert.equal((await dps.showEnrollment('rp-1')).registrationState?.substatus, 'deviceDataReset')
  })

  test('bulk enrollment operations: each one on its own, failures listed with DPS codes', async () => {
    const created = await dps.bulkEnrollments({ mode: 'create', enrollments: [{ registrationId: 'bulk-1', attestation: { type: 'symmetricKey' } }, { registrationId: 'bulk-2', attestation: { type: 'tpm' } }] })
    assert.deepEqual(
      created.errors.map((e) => [e.registrationId, e.errorCode]),
      [['bulk-2', 400004]],
    )
    assert.equal(created.isSuccessful, false)
    const etag = (await dps.getEnrollment('bulk-1')).etag
    const stale = await dps.bulkEnrollments({ mode: 'updateIfMatchETag', enrollments: [{ registrationId: 'bulk-1', etag: 'stale', provisioningStatus: 'disabled' }] })
    assert.deepEqual(stale.errors.map((e) => e.errorCode), [412002])
    const fresh = await dps.bulkEnrollments({ mode: 'updateIfMatchETag', enrollments: [{ registrationId: 'bulk-1', etag, provisioningStatus: 'disabled' }] })
    assert.deepEqual(fresh, { isSuccessful: true, errors: [] })
    assert.equal((await dps.getEnrollment('bulk-1')).provisioningStatus, 'disabled')
    assert.deepEqual(await dps.bulkEnrollments({ mode: 'delete', enrollments: [{ registrationId: 'bulk-1' }] }), { isSuccessful: true, errors: [] })
    await assert.rejects(dps.bulkEnrollments({ mode: 'merge', enrollments: [] }), /mode "merge"/)
  })

  test('the service REST API answers DPS\'s error body: bad SAS 401002, unknown enrollment 404201', async () => {
    const get = (path: string, auth: string) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: hub.ports.rest, path, method: 'GET', ca: hub.caPem, servername: 'localhost', headers: { authorization: auth, host: 'localhost' } }, (res) => {
          let text = ''
          res.on('data', (c: Buffer) => (text += c.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }))
        })
        req.on('error', reject)
        req.end()
      })
    const key = /SharedAccessKey=([^;]+)/.exec(dps.connectionString())?.[1] as string
    const good = buildSasToken({ resource: 'localhost', key, policyName: 'provisioningserviceowner' })
    const bad = buildSasToken({ resource: 'localhost', key: Buffer.alloc(32, 3).toString('base64'), policyName: 'provisioningserviceowner' })
    const denied = await get('/enrollments/rp-1?api-version=2021-10-01', bad)
    assert.equal(denied.status, 401)
    assert.equal(denied.body.errorCode, 401002)
    assert.deepEqual(Object.keys(denied.body).sort(), ['errorCode', 'message', 'timestampUtc', 'trackingId'])
    const hubPolicy = await get('/enrollments/rp-1?api-version=2021-10-01', hub.context.registry.serviceSasToken({ resource: 'localhost' }))
    assert.equal(hubPolicy.status, 401, 'an IoT Hub policy does not sign for the DPS')
    const missing = await get('/enrollments/nobody?api-version=2021-10-01', good)
    assert.equal(missing.status, 404)
    assert.equal(missing.body.errorCode, 404201)
    const found = await get('/enrollments/rp-1?api-version=2021-10-01', good)
    assert.equal(found.status, 200)
    assert.equal(found.body.registrationId, 'rp-1')
  })
})

describe('the assigned hub host', () => {
  test('a configured host is what registrations name, and devices may use it in their username and SAS resource', async () => {
    const hub = await startHub({ ports: { mqtt: 0, mqtts: null, rest: null }, dpsAssignedHub: 'edge-box.lan' })
    try {
      assert.equal(hub.dps.settings.assignedHub, 'edge-box.lan')
      const d = await hub.createDevice('alias-1')
      const token = (host: string) => buildSasToken({ resource: `${host}/devices/alias-1`, key: d.primaryKey as string })
      const viaAlias = await connect({ port: hub.ports.mqtt as number, clientId: 'alias-1', username: 'edge-box.lan/alias-1/?api-version=2021-04-12', password: token('edge-box.lan') })
      await viaAlias.endAsync()
      // Any other host is still refused (bad user name or password).
      await assert.rejects(connect({ port: hub.ports.mqtt as number, clientId: 'alias-1', username: 'other.lan/alias-1/?api-version=2021-04-12', password: token('other.lan') }), (err: { code: number }) => err.code === 4)
      // A token for the alias does not pass with the hub's own host name in the username, nor the reverse.
      await assert.rejects(connect({ port: hub.ports.mqtt as number, clientId: 'alias-1', username: `${hub.hostName}/alias-1/?api-version=2021-04-12`, password: token('other.lan') }), (err: { code: number }) => err.code === 4)
    } finally {
      await hub.close()
    }
  })

  test('a host that is not a host name is refused before the broker starts', async () => {
    await assert.rejects(startHub({ ports: { mqtt: 0, mqtts: null, rest: null }, dpsAssignedHub: 'not a host/' }), /is not a host name/)
  })
})

test("az's DPS --login and --all, and --top: the DPS's own connection strings pass, others are refused", async (t) => {
  const hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: null } })
  t.after(() => hub.close())
  const all = hub.dps.connectionStrings({ keyType: 'secondary' })
  assert.deepEqual(
    all.map((cs) => /SharedAccessKeyName=([^;]+)/.exec(cs)?.[1]),
    hub.dps.settings.policies.map((p) => p.name),
  )
  for (const cs of [hub.dps.connectionString(), ...all]) hub.dps.checkLogin(cs)
  const own = hub.dps.connectionString()
  assert.throws(() => hub.dps.checkLogin(own.replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=' + Buffer.alloc(32).toString('base64'))), /the key is not a key of policy "provisioningserviceowner"/)
  assert.throws(() => hub.dps.checkLogin(hub.serviceConnectionString().replace('iothubowner', 'registryRead')), /this DPS has no shared access policy "registryRead"/)
  assert.throws(() => hub.dps.checkLogin('HostName=x'), /not a DPS connection string/)
  assert.deepEqual(topOf([1, 2, 3], 2), [1, 2])
  assert.deepEqual(topOf([1, 2, 3], -1), [1, 2, 3])
  assert.deepEqual(topOf([1, 2, 3], undefined), [1, 2, 3])
})
