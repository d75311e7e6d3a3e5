/**
 * Issue 11 without the SDK: deployment manifests (`edge set-modules` / `deployment apply`) change
 * identities, twins and `$edgeHub` as a deployment does, a bad manifest is refused whole with JSON
 * paths, `module env` prints what `ModuleClient.fromEnvironment()` reads (every shell quotes it
 * right), `module run` passes the environment and the exit code, and the workload API (in process)
 * signs only for a module's current generation id, in iotedged's error shape.
 * The official SDK against all of this: test/e2e/sdk-modules.test.ts.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import type { ModuleRecord } from '../../src/registry/types.js'
import { formatEnvironment } from '../../src/workload/env.js'
import { startWorkloadServer, type WorkloadServer } from '../../src/workload/server.js'
import { cliOk, jsonOf, runCli, tempHome } from '../helpers/cli.js'
import { manifest } from '../helpers/edge-manifest.js'
import type { moduleView } from '../../src/registry/views.js'

type ModuleJson = ReturnType<typeof moduleView>
interface DeploymentJson {
  created: string[]
  unchanged: string[]
  adopted: string[]
  removed: string[]
  notManaged: string[]
  edgeHub: { routes: string[]; keptAuthorizations: boolean }
  moduleTwins: string[]
}

describe('deployment manifests', () => {
  const home = tempHome()
  const file = (name: string, doc: unknown) => {
    const p = join(home, name)
    writeFileSync(p, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2))
    return p
  }
  const cli = (args: string[]) => cliOk(home, args)
  const modules = async () => jsonOf<ModuleJson[]>(await cli(['module', 'list', '--device', 'edge-gateway']))

  before(async () => {
    await cli(['edgehub', 'set', '--default-policy'])
    await cli(['module', 'create', '--device', 'edge-gateway', 'handmade'])
  })

  test('edge set-modules creates module identities, sets routes and module twins, keeps the policy, and prints the module list as az does', async () => {
    const m1 = file(
      'm1.json',
      manifest({
        modules: ['filter', 'sink'],
        routes: { upstream: 'FROM /messages/* INTO $upstream', alerts: 'FROM /messages/modules/filter/outputs/alerts WHERE temperature > 30 INTO BrokeredEndpoint("/modules/sink/inputs/alertsIn")' },
        desired: { filter: { threshold: 30, nested: { a: [1, 2] } } },
      }),
    )
    // az prints the device's module identities after applying: the same list as `module list`.
    const mods = jsonOf<ModuleJson[]>(await cli(['edge', 'set-modules', '-d', 'edge-gateway', '--content', m1, '-n', 'edgemq']))
    assert.deepEqual(mods.map((m) => m.moduleId).sort(), ['$edgeAgent', '$edgeHub', 'filter', 'handmade', 'sink'])
    assert.equal(mods.find((m) => m.moduleId === 'filter')?.managedBy, 'iotEdge')
    assert.equal(mods.find((m) => m.moduleId === 'handmade')?.managedBy, null, 'a hand-made module is not taken over')
    assert.deepEqual(await modules(), mods)
    const twin = jsonOf<{ properties: { desired: Record<string, unknown> } }>(await cli(['twin', 'show', '--device', 'edge-gateway', '--module', 'filter']))
    assert.equal(twin.properties.desired.threshold, 30)
    const hub = jsonOf<{ properties: { desired: { routes: Record<string, string>; mqttBroker: { authorizations: unknown[] } } } }>(await cli(['edgehub', 'show']))
    assert.deepEqual(Object.keys(hub.properties.desired.routes), ['upstream', 'alerts'])
    assert.match(hub.properties.desired.routes.alerts, /WHERE temperature > 30/)
    assert.equal(hub.properties.desired.mqttBroker.authorizations.length, 1, 'the connect policy survives a manifest without mqttBroker')
    const agent = jsonOf<{ properties: { desired: { modules: Record<string, unknown> } } }>(await cli(['twin', 'show', '--device', 'edge-gateway', '--module', '$edgeAgent']))
    assert.deepEqual(Object.keys(agent.properties.desired.modules).sort(), ['filter', 'sink'])
  })

  test('deployment apply: a module no longer listed is removed, a listed hand-made one adopted, routes replaced', async () => {
    const m2 = file('m2.json', manifest({ modules: ['filter', 'handmade'], routes: { onlyFilter: 'FROM /messages/modules/filter/* INTO $upstream' } }))
    const r = jsonOf<DeploymentJson>(await cli(['deployment', 'apply', m2]))
    assert.deepEqual(r.removed, ['sink'])
    assert.deepEqual(r.unchanged, ['filter'])
    assert.deepEqual(r.adopted, ['handmade'])
    assert.deepEqual((await modules()).map((m) => m.moduleId).sort(), ['$edgeAgent', '$edgeHub', 'filter', 'handmade'])
    const hub = jsonOf<{ properties: { desired: { routes: Record<string, string> } } }>(await cli(['edgehub', 'show']))
    assert.deepEqual(Object.keys(hub.properties.desired.routes), ['onlyFilter'], 'a deployment replaces the routes')
    // The twin of a module the manifest gives no desired properties keeps its own.
    const twin = jsonOf<{ properties: { desired: Record<string, unknown> } }>(await cli(['twin', 'show', '--device', 'edge-gateway', '--module', 'filter']))
    assert.equal(twin.properties.desired.threshold, 30)
  })

  test('a bad manifest is refused whole (exit 2) with every error and its JSON path; nothing changes', async () => {
    const bad = file(
      'bad.json',
      `{
        "modulesContent": {
          "$edgeAgent": { "properties.desired": { "schemaVersion": "1.1", "modules": {
            "newmod": { "type": "docker", "settings": { "image": "x:1" } },
            "broken": { "settings": { "image": 5 }, "status": "paused" },
          } } },
          "$edgeHub": { "properties.desired": { "schemaVersion": "1.2",
            "routes": { "r1": "FROM /messages/* INTO nowhere", "r2": "FROM /messages/* WHERE ( INTO $upstream" },
            "storeAndForwardConfiguration": { "timeToLiveSecs": -1 } } },
          "ghost": { "properties.desired": { "a": 1 } },
          "newmod": { "properties.desired": { "a.b": 1 } },
        }
      }`,
    )
    const before = await modules()
    const r = await runCli(['edge', 'set-modules', '--content', bad], { home })
    assert.equal(r.code, 2, r.stderr)
    for (const path of [
      'modulesContent.$edgeAgent["properties.desired"].modules.broken.settings.image',
      'modulesContent.$edgeAgent["properties.desired"].modules.broken.status',
      'modulesContent.$edgeHub["properties.desired"].routes.r1',
      'modulesContent.$edgeHub["properties.desired"].routes.r2',
      'modulesContent.$edgeHub["properties.desired"].storeAndForwardConfiguration.timeToLiveSecs',
      'modulesContent.ghost',
      'modulesContent.newmod["properties.desired"].a.b',
    ]) {
      assert.ok(r.stderr.includes(`  ${path}: `), `stderr names ${path}:\n${r.stderr}`)
    }
    assert.match(r.stderr, /nothing was applied/)
    assert.deepEqual(await modules(), before, 'no module was created')
    const missing = await runCli(['deployment', 'apply', file('empty.json', { modulesContent: {} })], { home })
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /modulesContent\.\$edgeAgent: \$edgeAgent is missing/)
    assert.match(missing.stderr, /modulesContent\.\$edgeHub: \$edgeHub is missing/)
  })

  test('module env prints both modes in every shell; workload mode needs the broker (exit 3)', async () => {
    const cs = await cli(['module', 'env', '--module', 'filter'])
    const out = spawnSync('bash', ['-c', 'eval "$(cat)"; printf "%s\\n%s\\n%s" "$EdgeHubConnectionString" "$EdgeModuleCACertificateFile" "$MODULE_ROLE"'], { input: cs, encoding: 'utf8' })
    const [conn, caFile, role] = out.stdout.split('\n')
    assert.match(conn, /^HostName=edgemq\.azure-devices\.net;DeviceId=edge-gateway;ModuleId=filter;SharedAccessKey=[^;]+;GatewayHostName=localhost$/)
    assert.equal(caFile, join(home, 'pki', 'ca.pem'))
    assert.equal(role, 'filter', 'env values from the deployment manifest')
    const asJson = jsonOf<Record<string, string>>(await cli(['module', 'env', '-m', 'filter', '-o', 'json']))
    assert.equal(asJson.EdgeHubConnectionString, conn)
    assert.match((await cli(['module', 'env', '-m', 'filter', '--shell', 'fish'])), /^set -gx EdgeHubConnectionString 'HostName=/m)
    assert.match((await cli(['module', 'env', '-m', 'filter', '--shell', 'pwsh'])), /^\$env:EdgeHubConnectionString = 'HostName=/m)
    assert.match((await cli(['module', 'env', '-m', 'filter', '--shell', 'dotenv'])), /^EdgeHubConnectionString='HostName=/m)
    const wl = await runCli(['module', 'env', '-m', 'filter', '--mode', 'workload'], { home })
    assert.equal(wl.code, 3, wl.stderr)
    assert.match(wl.stderr, /workload/)
    const gone = await runCli(['module', 'env', '-m', 'nope'], { home })
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /module "nope" not found/)
  })

  test('shell quoting survives quotes, spaces and backslashes', () => {
    const env = { A: `it's "x" \\ $HOME;y` }
    const bash = spawnSync('bash', ['-c', `${formatEnvironment(env, 'bash')}; printf %s "$A"`], { encoding: 'utf8' })
    assert.equal(bash.stdout, env.A)
    assert.equal(formatEnvironment(env, 'pwsh'), `$env:A = 'it''s "x" \\ $HOME;y'`)
    assert.equal(formatEnvironment(env, 'fish'), `set -gx A 'it\\'s "x" \\\\ $HOME;y'`)
  })

  test('module run passes the environment and exits with the command\'s code; send-input needs the broker', async () => {
    const script = 'const cs = process.env.EdgeHubConnectionString || ""; process.exit(cs.includes("ModuleId=filter") && !process.env.IOTEDGE_WORKLOADURI ? 5 : 1)'
    const r = await runCli(['module', 'run', '--module', 'filter', '--', process.execPath, '-e', script], { home, env: { IOTEDGE_WORKLOADURI: 'http://stale/' } })
    assert.equal(r.code, 5, r.stderr)
    const none = await runCli(['module', 'run', '--module', 'filter'], { home })
    assert.equal(none.code, 1)
    assert.match(none.stderr, /put it after --/)
    const missing = await runCli(['module', 'run', '--module', 'filter', '--', 'edgemq-no-such-command'], { home })
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /not found/)
    const send = await runCli(['module', 'send-input', '--module', 'filter', '--input', 'in1', '--data', 'x'], { home })
    assert.equal(send.code, 3, send.stderr)
  })
})

describe('workload API (in process)', () => {
  const key = Buffer.alloc(32, 7).toString('base64')
  const mods: Record<string, ModuleRecord> = {
    filter: { deviceId: 'edge', moduleId: 'filter', authType: 'sas', primaryKey: key, secondaryKey: Buffer.alloc(32, 9).toString('base64'), generationId: '637000000000000001', etag: 'e', createdAt: '', updatedAt: '' },
    sink: { deviceId: 'edge', moduleId: 'sink', authType: 'sas', primaryKey: Buffer.alloc(32, 8).toString('base64'), secondaryKey: key, generationId: '637000000000000002', etag: 'e', createdAt: '', updatedAt: '' },
    $edgeHub: { deviceId: 'edge', moduleId: '$edgeHub', authType: 'sas', primaryKey: key, secondaryKey: key, generationId: '637000000000000003', etag: 'e', createdAt: '', updatedAt: '' },
  }
  let server: WorkloadServer
  before(async () => {
    server = await startWorkloadServer({ edgeDeviceId: () => 'edge', lookupModule: async (d, m) => (d === 'edge' ? mods[m] : undefined), trustBundle: async () => 'PEM' })
  })
  after(() => server.close())

  const data = Buffer.from('edgemq.azure-devices.net%2Fdevices%2Fedge%2Fmodules%2Ffilter\n1800000000').toString('base64')
  const sign = (path: string, body: unknown = { keyId: 'primary', algo: 'HMACSHA256', data }, headers: Record<string, string> = {}) =>
    fetch(`${server.uri.replace(/\/$/, '')}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })

  test('signs with the module\'s key for its current generation id', async () => {
    const res = await sign('/modules/filter/genid/637000000000000001/sign?api-version=2018-06-28')
    assert.equal(res.status, 200)
    const expected = createHmac('sha256', Buffer.from(key, 'base64')).update(Buffer.from(data, 'base64')).digest('base64')
    assert.deepEqual(await res.json(), { digest: expected })
    const tb = await fetch(`${server.uri}trust-bundle?api-version=2018-06-28`)
    assert.deepEqual(await tb.json(), { certificate: 'PEM' })
  })

  test('refuses a wrong generation id, another module\'s generation id, an unknown module and the runtime modules (404, iotedged shape)', async () => {
    for (const path of [
      '/modules/filter/genid/637000000000000009/sign', // stale / guessed genid
      '/modules/filter/genid/637000000000000002/sign', // sink's genid on filter's path
      '/modules/sink/genid/637000000000000001/sign', // filter's genid on sink's path: sink's key stays out of reach
      '/modules/ghost/genid/637000000000000001/sign',
      '/modules/%24edgeHub/genid/637000000000000003/sign',
    ]) {
      const res = await sign(`${path}?api-version=2018-06-28`)
      assert.equal(res.status, 404, path)
      const body = (await res.json()) as { message: string }
      assert.deepEqual(Object.keys(body), ['message'])
      assert.match(body.message, /^Module not found\n\tcaused by: /)
    }
    const badKey = await sign('/modules/filter/genid/637000000000000001/sign?api-version=2018-06-28', { keyId: 'tertiary', algo: 'HMACSHA256', data })
    assert.equal(badKey.status, 404)
  })

  test('bad requests: api-version, body, algo, base64, browser origin, foreign Host', async () => {
    const ok = '/modules/filter/genid/637000000000000001/sign'
    const cases: [Response, number, RegExp][] = [
      [await sign(ok), 400, /^Invalid API version/],
      [await sign(`${ok}?api-version=1999-01-01`), 400, /^Invalid API version/],
      [await sign(`${ok}?api-version=2018-06-28`, 'not json'), 400, /^Bad body/],
      [await sign(`${ok}?api-version=2018-06-28`, { keyId: 'primary', algo: 'SHA1', data }), 400, /^Bad body/],
      [await sign(`${ok}?api-version=2018-06-28`, { keyId: 'primary', algo: 'HMACSHA256', data: 'not base64!' }), 422, /^Invalid base64 string/],
      [await sign(`${ok}?api-version=2018-06-28`, undefined, { origin: 'http://evil.example' }), 403, /^Forbidden/],
    ]
    for (const [res, status, re] of cases) {
      assert.equal(res.status, status)
      assert.match(((await res.json()) as { message: string }).message, re)
    }
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host (fetch won't let us set one).
    const rebound = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.uri}trust-bundle?api-version=2018-06-28`, { headers: { host: 'evil.example' } }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(rebound.status, 403)
    assert.match(rebound.body, /Forbidden/)
  })
})
