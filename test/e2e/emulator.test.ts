/**
 * The in-process emulator (issue 10): `startHub()` from the package root — start time and idle
 * memory, two in-memory hubs in one process with no cross-talk, the service REST API's answers to
 * bad input (IoT Hub status codes and error bodies, and the server keeps serving), and
 * export/import round trips (library and CLI, including az's device list).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { connect as netConnect } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'

import { buildSasToken, deviceResource, exportHub, importHub, NotFoundError, startHub, type Hub } from '../../src/index.js'
import { BIN, jsonOf, runCli, tempHome } from '../helpers/cli.js'
import { collect, connackCode, connect, iothubUsername } from '../helpers/mqtt.js'

interface RestAnswer {
  status: number
  body: { Message?: string; errorCode?: string; message?: string } & Record<string, unknown>
  headers: Record<string, string | string[] | undefined>
}

/** One HTTPS request to the hub's REST port, trusting its CA (no global state). */
function rest(hub: Hub, method: string, path: string, opts: { body?: string | Buffer; auth?: string | null; headers?: Record<string, string> } = {}): Promise<RestAnswer> {
  const auth = opts.auth === undefined ? hub.context.registry.serviceSasToken({ resource: 'localhost' }) : opts.auth
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: 'localhost',
        port: hub.ports.rest,
        method,
        path: `${path}${path.includes('?') ? '&' : '?'}api-version=2021-04-12`,
        ca: hub.caPem,
        agent: false,
        headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/json; charset=utf-8', ...(opts.headers ?? {}) },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as RestAnswer['body']) : {}, headers: res.headers }))
      },
    )
    // The server may answer an oversize body and close before reading it all: that is fine.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)))
    if (opts.body !== undefined) req.write(opts.body)
    req.end()
  })
}

function assertIotHubError(r: RestAnswer, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body))
  assert.equal(r.body.errorCode, code)
  assert.match(String(r.body.Message), new RegExp(`^ErrorCode:${code};`))
}

test('startHub({ inMemory: true }): start to first accepted connection, idle RSS, nothing on disk', async (t) => {
  const cwdBefore = readdirSync(process.cwd()).sort()
  const samples: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const hub = await startHub({ inMemory: true })
    await new Promise<void>((resolve, reject) => {
      const s = netConnect(hub.ports.mqtt as number, '127.0.0.1', () => {
        s.end()
        resolve()
      })
      s.on('error', reject)
    })
    samples.push(performance.now() - t0)
    assert.equal(hub.caFile, undefined)
    assert.match(hub.caPem, /BEGIN CERTIFICATE/)
    await hub.close()
  }
  const warm = samples.slice(1).sort((a, b) => a - b)
  const median = warm[Math.floor(warm.length / 2)]
  t.diagnostic(`startHub → first TCP accept: cold ${samples[0].toFixed(0)} ms (first in process, lazy imports), warm median ${median.toFixed(0)} ms`)
  // The target is < 300 ms; the bound here is loose because CI shares two cores with other test files.
  assert.ok(median < 1500, `warm start took ${median.toFixed(0)} ms`)

  // Idle RSS: the process with one idle hub, and the average cost of each of 5 more idle hubs.
  const hub = await startHub()
  await new Promise((r) => setTimeout(r, 300))
  const one = process.memoryUsage().rss
  const more = await Promise.all([1, 2, 3, 4, 5].map(() => startHub()))
  await new Promise((r) => setTimeout(r, 300))
  const six = process.memoryUsage().rss
  t.diagnostic(`idle in-memory hub: process RSS ${(one / 2 ** 20).toFixed(0)} MiB with one hub; each further idle hub +${((six - one) / 5 / 2 ** 20).toFixed(1)} MiB`)
  await Promise.all([hub, ...more].map((h) => h.close()))
  assert.deepEqual(readdirSync(process.cwd()).sort(), cwdBefore, 'an in-memory hub wrote into the working directory')
  assert.equal(existsSync('(in-memory)'), false)
})

test('two in-memory hubs in one process, used in parallel: no cross-talk', async () => {
  const [a, b] = await Promise.all([startHub({ hubName: 'hub-a' }), startHub({ hubName: 'hub-b' })])
  try {
    assert.notEqual(a.caPem, b.caPem)
    assert.notEqual(a.ports.mqtt, b.ports.mqtt)
    // The same device id in both hubs: separate registries, separate keys.
    await Promise.all([a.createDevice('dev'), b.createDevice('dev')])
    assert.notEqual(await a.sas('dev'), await b.sas('dev'))
    assert.ok(await b.context.store.getDevice('dev'))
    await a.createDevice('only-a')
    assert.equal(await b.context.store.getDevice('only-a'), undefined)

    // b's token does not open a's broker.
    assert.equal(await connackCode({ port: a.ports.mqtt as number, clientId: 'dev', username: iothubUsername('dev', a.hostName), password: await b.sas('dev') }), 4)

    const ca = await connect({ port: a.ports.mqtts as number, clientId: 'dev', username: iothubUsername('dev', a.hostName), password: await a.sas('dev'), tls: { ca: a.caPem } })
    const cb = await connect({ port: b.ports.mqtts as number, clientId: 'dev', username: iothubUsername('dev', b.hostName), password: await b.sas('dev'), tls: { ca: b.caPem } })
    try {
      const evA = a.events({ deviceId: 'dev' })
      const evB = b.events({ deviceId: 'dev' })
      await Promise.all([
        ca.publishAsync('devices/dev/messages/events/', JSON.stringify({ from: 'a' }), { qos: 1 }),
        cb.publishAsync('devices/dev/messages/events/', JSON.stringify({ from: 'b' }), { qos: 1 }),
      ])
      const [ra, rb] = await Promise.all([evA.next(), evB.next()])
      assert.equal(JSON.parse((ra.value as { payload: Buffer }).payload.toString()).from, 'a')
      assert.equal(JSON.parse((rb.value as { payload: Buffer }).payload.toString()).from, 'b')
      // Nothing more arrived on either stream (b's message did not reach a, nor a's b).
      const more = await Promise.race([evA.next().then(() => 'event'), new Promise((r) => setTimeout(() => r('none'), 300))])
      assert.equal(more, 'none')
      await evA.return?.()
      await evB.return?.()

      // Direct methods and desired properties reach only the hub's own client.
      await Promise.all([ca.subscribeAsync('$iothub/methods/POST/#'), cb.subscribeAsync('$iothub/methods/POST/#'), ca.subscribeAsync('$iothub/twin/PATCH/properties/desired/#'), cb.subscribeAsync('$iothub/twin/PATCH/properties/desired/#')])
      const gotB = collect(cb, 1, { timeoutMs: 400 }).catch(() => [])
      ca.on('message', (topic) => {
        const rid = /\$rid=([^&]+)/.exec(topic)?.[1]
        if (topic.startsWith('$iothub/methods/POST/') && rid) void ca.publishAsync(`$iothub/methods/res/200/?$rid=${rid}`, JSON.stringify({ hub: 'a' }))
      })
      const desiredA = collect(ca, 1, { filter: (m) => m.topic.startsWith('$iothub/twin/PATCH/properties/desired/') })
      const r = await a.invokeMethod('dev', 'ping', { n: 1 }, 5)
      assert.deepEqual(r, { status: 200, payload: { hub: 'a' } })
      await a.updateTwin('dev', { desired: { interval: 5 } })
      assert.equal(JSON.parse((await desiredA)[0].payload.toString()).interval, 5)
      assert.deepEqual(await gotB, [], 'hub b\'s client received something meant for hub a')
      assert.equal((await b.getTwin('dev')).properties.desired.interval, undefined)
    } finally {
      await Promise.all([ca.endAsync(), cb.endAsync()])
    }
  } finally {
    await Promise.all([a.close(), b.close()])
  }
})

test('service REST: bad input gets IoT Hub status codes and error bodies, and the server keeps serving', async () => {
  const hub = await startHub()
  try {
    await hub.createDevice('d1')
    // Wrong SAS: bad signature, unknown policy, none at all, garbage.
    const forged = hub.context.registry.serviceSasToken({ resource: 'localhost' }).replace(/sig=[^&]+/, 'sig=AAAA')
    assertIotHubError(await rest(hub, 'GET', '/devices/d1', { auth: forged }), 401, 'IotHubUnauthorizedAccess')
    assertIotHubError(await rest(hub, 'GET', '/devices/d1', { auth: null }), 401, 'IotHubUnauthorizedAccess')
    assertIotHubError(await rest(hub, 'GET', '/devices/d1', { auth: 'SharedAccessSignature nonsense' }), 401, 'IotHubUnauthorizedAccess')
    const other = await startHub()
    try {
      assertIotHubError(await rest(hub, 'GET', '/devices/d1', { auth: other.context.registry.serviceSasToken({ resource: 'localhost' }) }), 401, 'IotHubUnauthorizedAccess')
    } finally {
      await other.close()
    }
    // Unknown device / module.
    assertIotHubError(await rest(hub, 'GET', '/devices/ghost'), 404, 'DeviceNotFound')
    assertIotHubError(await rest(hub, 'GET', '/twins/ghost'), 404, 'DeviceNotFound')
    assertIotHubError(await rest(hub, 'DELETE', '/devices/ghost', { headers: { 'if-match': '*' } }), 404, 'DeviceNotFound')
    assertIotHubError(await rest(hub, 'GET', '/devices/d1/modules/ghost'), 404, 'ModuleNotFound')
    assertIotHubError(await rest(hub, 'POST', '/twins/ghost/methods', { body: JSON.stringify({ methodName: 'x', responseTimeoutInSeconds: 5 }) }), 404, 'DeviceNotFound')
    assertIotHubError(await rest(hub, 'POST', '/twins/d1/methods', { body: JSON.stringify({ methodName: 'x', responseTimeoutInSeconds: 5 }) }), 404, 'DeviceNotOnline')
    // Bad JSON, wrong shapes.
    assertIotHubError(await rest(hub, 'PUT', '/devices/new1', { body: '{"deviceId": "new1",' }), 400, 'ArgumentInvalid')
    assertIotHubError(await rest(hub, 'PATCH', '/twins/d1', { body: '[1,2]' }), 400, 'ArgumentInvalid')
    assertIotHubError(await rest(hub, 'PUT', '/devices/new2', { body: JSON.stringify({ deviceId: 'other' }) }), 400, 'ArgumentInvalid')
    assertIotHubError(await rest(hub, 'PUT', '/devices/bad%ZZ', { body: '{}' }), 400, 'ArgumentInvalid')
    assertIotHubError(await rest(hub, 'PUT', '/devices/new3', { body: JSON.stringify({ deviceId: 'new3', authentication: { type: 'sas', symmetricKey: { primaryKey: 'short' } } }) }), 400, 'ArgumentInvalid')
    // Already exists.
    assertIotHubError(await rest(hub, 'PUT', '/devices/d1', { body: JSON.stringify({ deviceId: 'd1' }) }), 409, 'DeviceAlreadyExists')
    // Etag mismatch (twin and device).
    assertIotHubError(await rest(hub, 'PATCH', '/twins/d1', { body: JSON.stringify({ properties: { desired: { a: 1 } } }), headers: { 'if-match': '"AAAAAAAAAAk="' } }), 412, 'PreconditionFailed')
    assertIotHubError(await rest(hub, 'PUT', '/devices/d1', { body: JSON.stringify({ deviceId: 'd1', status: 'disabled' }), headers: { 'if-match': '"nope"' } }), 412, 'PreconditionFailed')
    assertIotHubError(await rest(hub, 'DELETE', '/devices/d1', { headers: { 'if-match': '"nope"' } }), 412, 'PreconditionFailed')
    // Oversize body: 413 without reading it all; the connection is closed, the server lives on.
    const big = Buffer.alloc(2 * 1024 * 1024, 0x20)
    const tooBig = await rest(hub, 'PATCH', '/twins/d1', { body: big })
    assertIotHubError(tooBig, 413, 'MessageTooLarge')
    assert.equal(tooBig.headers.connection, 'close')

    // Still serving, and nothing above changed the device.
    const d1 = await rest(hub, 'GET', '/devices/d1')
    assert.equal(d1.status, 200)
    assert.equal(d1.body.status, 'enabled')
    const twin = await rest(hub, 'GET', '/twins/d1')
    // Versions still 1; each side carries only its $metadata (az's twin shape).
    const { desired, reported } = twin.body.properties as Record<string, Record<string, unknown>>
    assert.deepEqual([desired.$version, reported.$version, Object.keys(desired), Object.keys(reported)], [1, 1, ['$metadata', '$version'], ['$metadata', '$version']])
    // And a correct etag works.
    const ok = await rest(hub, 'PATCH', '/twins/d1', { body: JSON.stringify({ properties: { desired: { a: 1 } } }), headers: { 'if-match': `"${String(twin.body.etag)}"` } })
    assert.equal(ok.status, 200)
    // The same API on the loopback control port (plain HTTP) shares the handlers: checked by the CLI tests.
  } finally {
    await hub.close()
  }
})

test('library: hub.invokeMethod / getTwin errors are typed', async () => {
  const hub = await startHub({ ports: { rest: null } })
  try {
    assert.equal(hub.ports.rest, undefined)
    await assert.rejects(hub.getTwin('ghost'), NotFoundError)
    await hub.createDevice('d1')
    await assert.rejects(hub.invokeMethod('d1', 'x'), (err: Error) => err instanceof NotFoundError && /not online/.test(err.message))
    await assert.rejects(hub.setEdgeHub({ schemaVersion: '1.2', mqttBroker: { authorizations: [{ identities: [], allow: 'x' }] } }), /invalid/)
  } finally {
    await hub.close()
  }
})

test('export/import: library round trip between two in-memory hubs, and CLI with az\'s device list', async () => {
  const a = await startHub({ policy: 'allow-all' })
  const b = await startHub()
  try {
    await a.createDevice('leaf', { parentId: a.edgeDeviceId })
    await a.createDevice('off', { status: 'disabled' })
    await a.createModule('leaf', 'm1')
    await a.updateTwin('leaf', { desired: { interval: 3 }, tags: { site: 'lab' } })
    await a.updateTwin('leaf/m1', { desired: { mode: 'x' } })
    const doc = await exportHub(a.context)
    const r = await importHub(b.context, JSON.parse(JSON.stringify(doc)))
    assert.equal(r.format, 'edgemq')
    assert.equal(r.edgeHub, true)
    const leafA = await a.context.store.getDevice('leaf')
    const leafB = await b.context.store.getDevice('leaf')
    assert.equal(leafB?.primaryKey, leafA?.primaryKey)
    assert.equal(leafB?.parentId, b.edgeDeviceId)
    assert.equal((await b.context.store.getDevice('off'))?.status, 'disabled')
    assert.equal((await b.context.store.getModule('leaf', 'm1'))?.primaryKey, (await a.context.store.getModule('leaf', 'm1'))?.primaryKey)
    const twin = await b.getTwin('leaf')
    assert.equal(twin.properties.desired.interval, 3)
    assert.deepEqual(twin.tags, { site: 'lab' })
    assert.equal((await b.getTwin('leaf/m1')).properties.desired.mode, 'x')
    // The $edgeHub document came along: leaf can connect to b with a's key (same key, b's hub name).
    await b.broker.live.reloadEdgeHub('change')
    const c = await connect({ port: b.ports.mqtt as number, clientId: 'leaf', username: iothubUsername('leaf', b.hostName), password: await b.sas('leaf') })
    await c.endAsync()
  } finally {
    await Promise.all([a.close(), b.close()])
  }

  // CLI: `hub import` of the array `az iot hub device-identity list` prints, then `hub export`.
  const home = tempHome()
  const azList = [
    {
      deviceId: 'az-edge',
      capabilities: { iotEdge: true },
      deviceScope: 'ms-azure-iot-edge://az-edge-638000000000000000',
      parentScopes: [],
      status: 'enabled',
      authentication: { type: 'sas', symmetricKey: { primaryKey: Buffer.alloc(32, 1).toString('base64'), secondaryKey: Buffer.alloc(32, 2).toString('base64') }, x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } },
    },
    {
      deviceId: 'az-leaf',
      capabilities: { iotEdge: false },
      deviceScope: 'ms-azure-iot-edge://az-edge-638000000000000000',
      parentScopes: ['ms-azure-iot-edge://az-edge-638000000000000000'],
      status: 'disabled',
      authentication: { type: 'sas', symmetricKey: { primaryKey: Buffer.alloc(32, 3).toString('base64'), secondaryKey: Buffer.alloc(32, 4).toString('base64') }, x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } },
    },
    { deviceId: 'az-x509', authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20), secondaryThumbprint: null } }, capabilities: { iotEdge: false }, status: 'enabled' },
  ]
  const file = join(home, 'az-devices.json')
  writeFileSync(file, JSON.stringify(azList))
  const imp = await runCli(['hub', 'import', file], { home })
  assert.equal(imp.code, 0, imp.stderr)
  assert.equal(jsonOf<{ format: string; devices: { created: number } }>(imp).format, 'az-device-list')
  assert.equal(jsonOf<{ devices: { created: number } }>(imp).devices.created, 3)
  const shown = jsonOf<{ parentScopes: string[]; status: string; authentication: { symmetricKey: { primaryKey: string } } }>(await runCli(['device', 'show', 'az-leaf'], { home }))
  assert.equal(shown.status, 'disabled')
  assert.equal(shown.authentication.symmetricKey.primaryKey, Buffer.alloc(32, 3).toString('base64'))
  assert.equal(shown.parentScopes.length, 1)
  assert.match(shown.parentScopes[0], /^ms-azure-iot-edge:\/\/az-edge-/)
  const exp = await runCli(['hub', 'export'], { home })
  assert.equal(exp.code, 0, exp.stderr)
  const exported = JSON.parse(exp.stdout) as { edgemqExport: number; devices: { deviceId: string }[] }
  assert.equal(exported.edgemqExport, 1)
  assert.deepEqual(exported.devices.map((d) => d.deviceId).sort(), ['az-edge', 'az-leaf', 'az-x509', 'edge-gateway'])
  const bad = await runCli(['hub', 'import', join(home, 'nope.json')], { home })
  assert.equal(bad.code, 1)
  writeFileSync(file, '{"devices": 3}')
  assert.equal((await runCli(['hub', 'import', file], { home })).code, 2)
})

test('broker start --in-memory --import <fixture> --rest-port 0: only broker.json in the home, gone after stop', async () => {
  // A fixture made by the library (what `hub export` writes).
  const src = await startHub()
  await src.createDevice('fx-dev')
  const fixtureDir = tempHome()
  const fixture = join(fixtureDir, 'fixture.json')
  writeFileSync(fixture, JSON.stringify(await exportHub(src.context)))
  const key = (await src.context.store.getDevice('fx-dev'))?.primaryKey as string
  await src.close()

  const home = join(tempHome(), 'in-memory-home') // does not exist yet
  const proc = spawn(process.execPath, [BIN, 'broker', 'start', '--home', home, '--in-memory', '--import', fixture, '--rest-port', '0', '--port', '0', '--tls-port', '0', '-o', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined },
  })
  let stderr = ''
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = once(proc, 'exit')
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: proc.stdout! }).on('line', (l) => l.includes('"event":"ready"') && resolve(l))
      proc.once('exit', (code) => reject(new Error(`broker exited with ${code}: ${stderr}`)))
    })
    const ready = JSON.parse(line) as { caPem: string; inMemory: boolean; ports: { rest: number; mqtt: number } }
    assert.match(ready.caPem, /BEGIN CERTIFICATE/)
    assert.equal(ready.inMemory, true)
    assert.ok(ready.ports.rest > 0)
    assert.deepEqual(readdirSync(home), ['broker.json'])
    // The imported device connects with its fixture key (the fixture's $edgeHub policy came along).
    const sas = buildSasToken({ resource: deviceResource('edgemq.azure-devices.net', 'fx-dev'), key })
    const c = await connect({ port: ready.ports.mqtt, clientId: 'fx-dev', password: sas })
    await c.endAsync()
    // `broker stop` finds it through broker.json (and opens no registry in the home).
    const stop = await runCli(['broker', 'stop'], { home })
    assert.equal(stop.code, 0, stop.stderr)
    await exited
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      await exited
    }
  }
  assert.deepEqual(readdirSync(home), [])
})
