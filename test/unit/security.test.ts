// Regression tests for the security path (issue 14), in process through startHub(): each way in
// obeys the same rules. Item 1 (a will orphaned by kill -9) is in test/e2e/orphaned-will.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect as netConnect } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import mqttPacket from 'mqtt-packet'

import { brokerPersistence } from '../../src/broker/aedes-internals.js'
import { readRuntime } from '../../src/broker/runtime.js'
import { homePaths, openHub } from '../../src/config/home.js'
import { startHub, type Hub } from '../../src/emulator/index.js'
import { InvalidDocumentError } from '../../src/errors.js'
import type { AuthorizationStatement } from '../../src/policy/index.js'
import { buildSasToken } from '../../src/sas/index.js'
import { HubService } from '../../src/service/hub-service.js'
import { captureLog } from '../helpers/log-capture.js'
import { collect, connect, iothubUsername } from '../helpers/mqtt.js'

const CONNECT_ALL: AuthorizationStatement = { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }

async function device(hub: Hub, id: string, opts: { clean?: boolean; will?: { topic: string; payload: string; qos: 0 | 1 } } = {}) {
  const password = await hub.sas(id)
  return connect({
    port: hub.ports.mqtt as number,
    clientId: id,
    password,
    clean: opts.clean ?? true,
    ...(opts.will ? { will: opts.will } : {}),
  })
}

test('item 2: refused SUBSCRIBE filters are never stored in a persistent session', async (t) => {
  const hub = await startHub({
    hubName: 'edgemq',
    policy: [CONNECT_ALL, { identities: ['d1', 'd2'], allow: [{ operations: ['mqtt:subscribe', 'mqtt:publish'], resources: ['allowed/#'] }] }, { identities: ['d2'], allow: [{ operations: ['mqtt:publish'], resources: ['#'] }] }],
  })
  t.after(() => hub.close())
  await hub.createDevice('d1')
  await hub.createDevice('d2')
  const d1 = await device(hub, 'd1', { clean: false })
  const filters = ['allowed/topic', '#', 'devices/+/messages/devicebound/#', '$SYS/#']
  // MQTT.js 5 rejects on a SUBACK failure code, with the SUBACK packet attached.
  const suback = await d1.subscribeAsync(Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }]))).catch((err: { packet?: { granted: number[] } }) => err.packet)
  assert.deepEqual((suback as { granted: number[] }).granted, [1, 128, 128, 128])
  const stored = await brokerPersistence(hub.broker.aedes).subscriptionsByClient({ id: 'd1' })
  assert.deepEqual((stored as { topic: string }[]).map((s) => s.topic), ['allowed/topic'], 'only the granted filter is in the session store')
  await d1.endAsync()

  // Offline: a message only the refused `#` would match is not queued; the granted one is, in order.
  const d2 = await device(hub, 'd2')
  await d2.publishAsync('other/x', 'not for d1', { qos: 1 })
  await d2.publishAsync('allowed/topic', 'for d1', { qos: 1 })
  await d2.endAsync()
  let first: Promise<{ topic: string }[]> | undefined
  const again = await connect({ port: hub.ports.mqtt as number, clientId: 'd1', password: await hub.sas('d1'), clean: false, beforeConnect: (c) => (first = collect(c, 1)) })
  t.after(() => again.endAsync())
  const [m] = await (first as Promise<{ topic: string }[]>)
  assert.equal(m.topic, 'allowed/topic', 'the first queued message is the granted one: nothing was queued for `#`')
})

/** A raw MQTT 3.1.1 CONNECT with a will, and nothing after it (no PINGREQ). */
function rawConnectWithWill(port: number, clientId: string, password: string, keepalive: number, will: { topic: string; payload: string }) {
  const socket = netConnect(port, '127.0.0.1')
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId,
      keepalive,
      username: iothubUsername(clientId),
      password: Buffer.from(password),
      will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: false },
    } as mqttPacket.IConnectPacket),
  )
  socket.on('error', () => undefined)
  return socket
}

test('item 3: wills survive error disconnects (keep-alive timeout, TCP reset) as MQTT 3.1.1 §3.1.2.5 says', async (t) => {
  const hub = await startHub({ hubName: 'edgemq', policy: 'allow-all' })
  t.after(() => hub.close())
  for (const id of ['watcher', 'sleepy', 'reset']) await hub.createDevice(id)
  const watcher = await device(hub, 'watcher')
  t.after(() => watcher.endAsync())
  await watcher.subscribeAsync('wills/#', { qos: 1 })

  // Keep-alive timeout: CONNECT with keepalive 1 s, then silence; aedes gives up after 1.5 s.
  const kaWill = collect(watcher, 1, { timeoutMs: 8000 })
  const sleepy = rawConnectWithWill(hub.ports.mqtt as number, 'sleepy', await hub.sas('sleepy'), 1, { topic: 'wills/sleepy', payload: 'gone quiet' })
  t.after(() => sleepy.destroy())
  const [ka] = await kaWill
  assert.deepEqual([ka.topic, ka.payload.toString()], ['wills/sleepy', 'gone quiet'])

  // TCP reset (RST, not FIN): the socket errors with ECONNRESET on the broker's side.
  const resetWill = collect(watcher, 1, { timeoutMs: 8000 })
  const r = await device(hub, 'reset', { will: { topic: 'wills/reset', payload: 'cable cut', qos: 1 } })
  ;(r.stream as unknown as { resetAndDestroy(): void }).resetAndDestroy()
  const [rw] = await resetWill
  assert.deepEqual([rw.topic, rw.payload.toString()], ['wills/reset', 'cable cut'])
  r.end(true)
})

test('wills obey the policy and IoT Hub rules like any publish (live client, error disconnect)', async (t) => {
  const log = captureLog()
  const hub = await startHub({ hubName: 'edgemq', logger: log.logger, policy: [CONNECT_ALL, { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['ok/#'] }] }] })
  t.after(() => hub.close())
  for (const id of ['victim', 'attacker']) await hub.createDevice(id)
  const victim = await device(hub, 'victim')
  t.after(() => victim.endAsync())
  await victim.subscribeAsync(['$iothub/methods/POST/#', '$iothub/twin/PATCH/properties/desired/#', 'devices/victim/messages/devicebound/#', 'ok/#'], { qos: 1 })
  for (const topic of ['$iothub/methods/POST/reboot/?$rid=1', '$iothub/twin/PATCH/properties/desired/?$version=999', 'devices/victim/messages/devicebound/x=1', 'secret/x']) {
    const mark = log.mark()
    const a = await device(hub, 'attacker', { will: { topic, payload: '{"forged":true}', qos: 1 } })
    ;(a.stream as unknown as { resetAndDestroy(): void }).resetAndDestroy()
    const refused = await log.waitFor(/will refused/, { since: mark })
    assert.equal(refused.topic, topic)
    a.end(true)
  }
  // The control: an allowed will still goes out, and it is the only thing the victim ever got.
  const got = collect(victim, 1)
  const a = await device(hub, 'attacker', { will: { topic: 'ok/bye', payload: 'bye', qos: 1 } })
  ;(a.stream as unknown as { resetAndDestroy(): void }).resetAndDestroy()
  const [m] = await got
  assert.equal(m.topic, 'ok/bye')
  a.end(true)
})

function rest(port: number, opts: { https?: { ca: string }; method: string; path: string; token: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: unknown }> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body))
  const request = opts.https ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method,
        path: opts.path,
        ...(opts.https ? { ca: opts.https.ca, servername: 'localhost' } : {}),
        headers: { authorization: opts.token, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}), ...(opts.headers ?? {}) },
      },
      (res) => {
        // The event stream never ends: its status line is the answer.
        if (opts.path.startsWith('/edgemq/events') && res.statusCode === 200) {
          res.destroy()
          return resolve({ status: res.statusCode ?? 0, body: undefined })
        }
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : undefined })
        })
      },
    )
    req.on('error', reject)
    if (payload) req.write(payload)
    req.end()
  })
}

test('item 4: REST rights per IoT Hub policy (control API and --rest-port alike); 401 IotHubUnauthorizedAccess otherwise', async (t) => {
  const hub = await startHub({ hubName: 'edgemq', policy: 'allow-all' })
  t.after(() => hub.close())
  await hub.createDevice('d1')
  const need: [method: string, path: string, right: string, body?: unknown][] = [
    ['GET', '/devices', 'RegistryRead'],
    ['GET', '/devices/d1', 'RegistryRead'],
    ['GET', '/devices/d1/modules', 'RegistryRead'],
    ['PUT', '/devices/fresh-{p}', 'RegistryWrite', { deviceId: 'fresh-{p}' }],
    ['DELETE', '/devices/fresh-{p}', 'RegistryWrite'],
    ['GET', '/twins/d1', 'ServiceConnect'],
    ['PATCH', '/twins/d1', 'ServiceConnect', { properties: { desired: { a: 1 } } }],
    ['POST', '/twins/d1/methods', 'ServiceConnect', { methodName: 'm', responseTimeoutInSeconds: 5 }],
    ['POST', '/devices/d1/messages/deviceBound', 'ServiceConnect', { hello: 1 }],
    ['GET', '/edgemq/events', 'ServiceConnect'],
    ['GET', '/edgemq/status', 'ServiceConnect'],
  ]
  const rightsOf: Record<string, string[]> = {
    iothubowner: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
    service: ['ServiceConnect'],
    device: ['DeviceConnect'],
    registryRead: ['RegistryRead'],
    registryReadWrite: ['RegistryRead', 'RegistryWrite'],
  }
  assert.deepEqual(hub.context.hub.policies.map((p) => p.name).sort(), Object.keys(rightsOf).sort(), 'a new hub has IoT Hub\'s five default policies')
  const ports: [string, number, { ca: string } | undefined][] = [
    ['control', hub.ports.control, undefined],
    ['rest', hub.ports.rest as number, { ca: hub.caPem }],
  ]
  for (const [where, port, https] of ports) {
    for (const policy of hub.context.hub.policies) {
      const token = buildSasToken({ resource: hub.hostName, key: policy.primaryKey, policyName: policy.name, durationSecs: 600 })
      for (const [method, rawPath, right, body] of need) {
        const path = rawPath.replace('{p}', `${where}-${policy.name}`.toLowerCase())
        const headers = method === 'DELETE' ? { 'if-match': '*' } : undefined
        const r = await rest(port, { https, method, path, token, body: body && JSON.parse(JSON.stringify(body).replace('{p}', `${where}-${policy.name}`.toLowerCase())), headers })
        const label = `${where} ${policy.name} ${method} ${path}`
        if (rightsOf[policy.name].includes(right)) assert.notEqual(r.status, 401, `${label}: allowed, got ${JSON.stringify(r.body)}`)
        else {
          assert.equal(r.status, 401, `${label}: needs ${right}`)
          assert.equal((r.body as { errorCode: string }).errorCode, 'IotHubUnauthorizedAccess', label)
        }
      }
    }
  }
  // The takeover the review found: a `service` token may not read or replace a device's keys.
  const before = await hub.context.store.getDevice('d1')
  const service = hub.context.hub.policies.find((p) => p.name === 'service')!
  const token = buildSasToken({ resource: hub.hostName, key: service.primaryKey, policyName: 'service', durationSecs: 600 })
  const put = await rest(hub.ports.control, { method: 'PUT', path: '/devices/d1', token, headers: { 'if-match': '*' }, body: { deviceId: 'd1', authentication: { symmetricKey: { primaryKey: Buffer.alloc(32, 1).toString('base64'), secondaryKey: Buffer.alloc(32, 2).toString('base64') } } } })
  assert.equal(put.status, 401)
  assert.equal((await hub.context.store.getDevice('d1'))?.primaryKey, before?.primaryKey)
})

test('item 5: an invalid $edgeHub document is refused on every write path; a stored one falls back to the last good', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'edgemq-sec-'))
  t.after(() => rmSync(home, { recursive: true, force: true }))
  const bad = { schemaVersion: '1.2', mqttBroker: { authorizations: [{ identities: [], allow: [{ operations: ['mqtt:pub'] }] }] } }
  {
    const hub = await startHub({ inMemory: false, home, policy: 'allow-all', ports: { mqtts: null, rest: null } })
    await hub.createDevice('d1')
    const owner = hub.context.hub.policies.find((p) => p.name === 'iothubowner')!
    const token = buildSasToken({ resource: hub.hostName, key: owner.primaryKey, policyName: owner.name, durationSecs: 600 })
    const path = `/twins/${hub.edgeDeviceId}/modules/${encodeURIComponent('$edgeHub')}`
    const r = await rest(hub.ports.control, { method: 'PATCH', path, token, body: { properties: { desired: bad } } })
    assert.equal(r.status, 400)
    assert.equal((r.body as { code: string }).code, 'INVALID_DOCUMENT')
    assert.match(JSON.stringify((r.body as { issues: unknown[] }).issues), /mqtt:pub/)
    const twin = await hub.context.store.getTwin({ deviceId: hub.edgeDeviceId, moduleId: '$edgeHub' })
    assert.doesNotMatch(JSON.stringify(twin?.desired), /"mqtt:pub"/, 'nothing invalid was stored')
    await hub.close()
  }
  // A document stored past validation (an older edgemq, a hand edit): the broker starts on the last good one.
  const ctx = await openHub({ home })
  await ctx.store.updateTwin({ deviceId: ctx.hub.edgeDeviceId, moduleId: '$edgeHub' }, (tw) => ({ ...tw, desired: bad, desiredVersion: tw.desiredVersion + 1, version: tw.version + 1 }), 'desired')
  await ctx.close()
  const log = captureLog()
  const hub = await startHub({ inMemory: false, home, policy: 'none', logger: log.logger, ports: { mqtts: null, rest: null } })
  t.after(() => hub.close())
  await log.waitFor(/stored \$edgeHub document is invalid: using the last good one/)
  assert.equal(hub.broker.lastDesiredStatus.code, 400, 'the reported status still says the stored document is refused')
  const d1 = await device(hub, 'd1')
  await d1.endAsync()
})

test('item 6: the per-session queue bound holds (drop_new keeps the first, drop_old the last), counted in status', async (t) => {
  for (const whenFull of ['drop_new', 'drop_old'] as const) {
    const hub = await startHub({ hubName: 'edgemq', policy: 'allow-all' })
    t.after(() => hub.close())
    hub.context.hub.broker.maxQueued = 5
    hub.context.hub.broker.whenFull = whenFull
    await hub.createDevice('sub')
    await hub.createDevice('pub')
    const sub = await device(hub, 'sub', { clean: false })
    await sub.subscribeAsync('q/#', { qos: 1 })
    await sub.endAsync()
    const pub = await device(hub, 'pub')
    for (let i = 0; i < 20; i++) await pub.publishAsync(`q/${i}`, String(i), { qos: 1 })
    await pub.endAsync()
    let got: Promise<{ topic: string }[]> | undefined
    const again = await connect({ port: hub.ports.mqtt as number, clientId: 'sub', password: await hub.sas('sub'), clean: false, beforeConnect: (c) => (got = collect(c, 5)) })
    const msgs = await (got as Promise<{ topic: string }[]>)
    const want = whenFull === 'drop_new' ? [0, 1, 2, 3, 4] : [15, 16, 17, 18, 19]
    assert.deepEqual(msgs.map((m) => m.topic), want.map((i) => `q/${i}`), whenFull)
    // Nothing more: a round trip on a fresh topic comes back as the very next message.
    await again.subscribeAsync('probe', { qos: 1 })
    const next = collect(again, 1)
    await again.publishAsync('probe', 'p', { qos: 1 })
    assert.equal((await next)[0].topic, 'probe', `${whenFull}: exactly ${hub.context.hub.broker.maxQueued} were queued`)
    const st = hub.broker.status()
    assert.equal(st.sessions.dropped, 15)
    assert.equal(st.sessions.droppedByClient.sub, 15)
    await again.endAsync()
  }
})

test('item 7: one error mapping: a refused twin patch is the same typed error (exit 2, issues) with and without a broker', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'edgemq-sec-'))
  t.after(() => rmSync(home, { recursive: true, force: true }))
  const ctx = await openHub({ home, createDefault: true })
  await ctx.registry.createDevice({ deviceId: 'd1' })
  const offline = await new HubService(ctx).updateTwin({ deviceId: 'd1' }, { desired: [1] }).catch((e: unknown) => e)
  await ctx.close()
  const hub = await startHub({ inMemory: false, home, policy: 'allow-all', ports: { mqtts: null, rest: null } })
  t.after(() => hub.close())
  const ctx2 = await openHub({ home })
  t.after(() => ctx2.close())
  assert.ok(readRuntime(homePaths(home).brokerState), 'a broker runs for this home: the service goes through its control API')
  const svc = new HubService(ctx2)
  const online = await svc.updateTwin({ deviceId: 'd1' }, { desired: [1] }).catch((e: unknown) => e)
  for (const [where, err] of [['offline', offline], ['through the broker', online]] as const) {
    assert.ok(err instanceof InvalidDocumentError, `${where}: ${String(err)}`)
    assert.equal(err.exitCode, 2, where)
    assert.ok(err.issues.length > 0, `${where}: the issues come along`)
  }
  assert.deepEqual((online as InvalidDocumentError).issues, (offline as InvalidDocumentError).issues)
  // A message over the hub's limit is refused on the service path too (413), and nothing is sent.
  const big = await hub.sendC2d('d1', Buffer.alloc(hub.context.hub.broker.maxMessageSize + 1)).catch((e: unknown) => e)
  assert.equal((big as { code?: string }).code, 'TOO_LARGE')
})
