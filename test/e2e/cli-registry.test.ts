/**
 * The identity commands through the real binary on a temp home: devices, modules, connection
 * strings, SAS tokens and the seed's exact az-style command lines (PRODUCT.md "az parity").
 */
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'

import { buildSasToken, parseSasToken, verifySasToken } from '../../src/sas/index.js'
import { jsonOf, runCli, tempHome, type CliResult } from '../helpers/cli.js'
import type { deviceView, moduleView } from '../../src/registry/views.js'

type DeviceJson = ReturnType<typeof deviceView>
type ModuleJson = ReturnType<typeof moduleView>

const ok = (r: CliResult) => {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}

describe('device, module, connection-string and sas commands', () => {
  let home = ''
  const cli = (...args: string[]) => runCli(args, { home })
  let sub: DeviceJson

  before(async () => {
    home = tempHome()
    const r = ok(await cli('device', 'create', 'sub_client', '--pd', 'edge-gateway'))
    // First use of the home creates the default hub and says so on stderr (stdout stays JSON).
    assert.match(r.stderr, /created hub "edgemq" with edge device "edge-gateway"/)
    sub = jsonOf<DeviceJson>(r)
  })

  test('device create prints an az-shaped device with generated keys and the parent scope', () => {
    assert.equal(sub.deviceId, 'sub_client')
    assert.equal(sub.status, 'enabled')
    assert.equal(sub.authentication.type, 'sas')
    assert.equal(Buffer.from(sub.authentication.symmetricKey.primaryKey ?? '', 'base64').length, 32)
    assert.notEqual(sub.authentication.symmetricKey.primaryKey, sub.authentication.symmetricKey.secondaryKey)
    assert.equal(sub.capabilities.iotEdge, false)
    assert.equal(sub.parentScopes.length, 1)
    assert.match(sub.parentScopes[0], /^ms-azure-iot-edge:\/\/edge-gateway-\d+$/)
  })

  test('device list / show / update / delete', async () => {
    const key = Buffer.alloc(32, 1).toString('base64')
    ok(await cli('device', 'create', 'tmp1', '--primary-key', key, '--secondary-key', Buffer.alloc(16, 2).toString('base64')))
    const [list, show, tsv] = await Promise.all([cli('device', 'list'), cli('device', 'show', 'tmp1'), cli('device', 'list', '-o', 'tsv')])
    const ids = jsonOf<DeviceJson[]>(ok(list)).map((d) => d.deviceId)
    assert.deepEqual(ids, ['edge-gateway', 'sub_client', 'tmp1'])
    assert.equal(jsonOf<DeviceJson>(ok(show)).authentication.symmetricKey.primaryKey, key)
    assert.equal(ok(tsv).stdout.trim().split('\n').length, 3)
    assert.match(tsv.stdout, /^edge-gateway\tenabled\tsas\ttrue\t/m)

    const upd = jsonOf<DeviceJson>(ok(await cli('device', 'update', 'tmp1', '--status', 'disabled')))
    assert.equal(upd.status, 'disabled')
    assert.notEqual(upd.etag, jsonOf<DeviceJson>(show).etag)
    // Stale etag: refused (optimistic concurrency, az --etag).
    const stale = await cli('device', 'update', 'tmp1', '--status', 'enabled', '--etag', jsonOf<DeviceJson>(show).etag)
    assert.equal(stale.code, 1)
    assert.match(stale.stderr, /^error: etag/m)

    assert.deepEqual(jsonOf(ok(await cli('device', 'delete', 'tmp1'))), { deleted: 'tmp1' })
    const gone = await cli('device', 'show', 'tmp1')
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /^error: device "tmp1" not found$/m)
  })

  test('module create / list / show / delete', async () => {
    const m = jsonOf<ModuleJson>(ok(await cli('module', 'create', '--device', 'edge-gateway', 'filter')))
    assert.equal(m.moduleId, 'filter')
    assert.equal(m.authentication.type, 'sas')
    const [list, show] = await Promise.all([cli('module', 'list', '--device', 'edge-gateway'), cli('module', 'show', '--device', 'edge-gateway', 'filter')])
    // Edge devices always carry the runtime modules.
    assert.deepEqual(jsonOf<ModuleJson[]>(ok(list)).map((x) => x.moduleId).sort(), ['$edgeAgent', '$edgeHub', 'filter'])
    assert.equal(jsonOf<ModuleJson>(ok(show)).authentication.symmetricKey.primaryKey, m.authentication.symmetricKey.primaryKey)
    // az spelling.
    const azShow = jsonOf<ModuleJson>(ok(await cli('hub', 'module-identity', 'show', '-d', 'edge-gateway', '-m', 'filter', '-n', 'edgemq')))
    assert.equal(azShow.moduleId, 'filter')
    ok(await cli('module', 'delete', '--device', 'edge-gateway', 'filter'))
    const gone = await cli('module', 'show', '--device', 'edge-gateway', 'filter')
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /^error: module "filter" not found on device "edge-gateway"$/m)
  })

  test('connection-string show: device, module, --gateway, --policy, -o tsv', async () => {
    ok(await cli('module', 'create', '--device', 'edge-gateway', 'cs-mod'))
    const [dev, gw, mod, pol, polGw, tsv] = await Promise.all([
      cli('connection-string', 'show', '--device', 'sub_client'),
      cli('connection-string', 'show', '--device', 'sub_client', '--gateway', 'localhost'),
      cli('connection-string', 'show', '--device', 'edge-gateway', '--module', 'cs-mod'),
      cli('connection-string', 'show', '--policy', 'iothubowner'),
      cli('connection-string', 'show', '--policy', 'iothubowner', '--gateway', 'localhost'),
      cli('connection-string', 'show', '--device', 'sub_client', '-o', 'tsv'),
    ])
    const key = sub.authentication.symmetricKey.primaryKey
    const devCs = `HostName=edgemq.azure-devices.net;DeviceId=sub_client;SharedAccessKey=${key}`
    assert.deepEqual(jsonOf(ok(dev)), { connectionString: devCs })
    assert.deepEqual(jsonOf(ok(gw)), { connectionString: `${devCs};GatewayHostName=localhost` })
    assert.match(jsonOf<{ connectionString: string }>(ok(mod)).connectionString, /^HostName=edgemq\.azure-devices\.net;DeviceId=edge-gateway;ModuleId=cs-mod;SharedAccessKey=[A-Za-z0-9+/=]{44}$/)
    assert.match(jsonOf<{ connectionString: string }>(ok(pol)).connectionString, /^HostName=edgemq\.azure-devices\.net;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/=]{44}$/)
    assert.match(jsonOf<{ connectionString: string }>(ok(polGw)).connectionString, /^HostName=localhost;SharedAccessKeyName=iothubowner;/)
    // tsv: the bare string, for "$(edgemq connection-string show … -o tsv)".
    assert.equal(ok(tsv).stdout, `${devCs}\n`)
    // az spelling.
    const az = ok(await cli('hub', 'device-identity', 'connection-string', 'show', '-d', 'sub_client', '-n', 'edgemq'))
    assert.deepEqual(jsonOf(az), { connectionString: devCs })
  })

  test('sas: json, --raw, --key-type secondary, --module, service policy; tokens verify with the device keys', async () => {
    const now = Math.floor(Date.now() / 1000)
    const [json, raw, secondary, svc] = await Promise.all([
      cli('sas', '--device', 'sub_client'),
      cli('sas', '--device', 'sub_client', '--raw', '--duration', '60'),
      cli('sas', '--device', 'sub_client', '--key-type', 'secondary', '--raw'),
      cli('sas', '--policy', 'iothubowner'),
    ])
    const done = Math.floor(Date.now() / 1000)
    const res = 'edgemq.azure-devices.net/devices/sub_client'
    const keys = [sub.authentication.symmetricKey.primaryKey ?? '', sub.authentication.symmetricKey.secondaryKey ?? '']
    const token = jsonOf<{ sas: string }>(ok(json)).sas
    const f = parseSasToken(token)
    assert.equal(f.resource, res)
    // Between the start and the end of the CLI runs, plus 3600 s (a loaded machine may take seconds per run).
    assert.ok(f.se >= now + 3600 && f.se <= done + 3600, `default duration is 3600 s (se ${f.se}, runs ${now}…${done})`)
    assert.deepEqual(verifySasToken(f, keys, { acceptedResources: [res] }), { ok: true, keyIndex: 0 })

    assert.match(ok(raw).stdout, /^SharedAccessSignature sr=[^\s]+&sig=[^\s]+&se=\d+\n$/)
    const rawSe = parseSasToken(raw.stdout.trim()).se
    assert.ok(rawSe >= now + 60 && rawSe <= done + 60, `--duration 60 (se ${rawSe}, runs ${now}…${done})`)
    assert.deepEqual(verifySasToken(parseSasToken(ok(secondary).stdout.trim()), keys, { acceptedResources: [res] }), { ok: true, keyIndex: 1 })
    const s = parseSasToken(jsonOf<{ sas: string }>(ok(svc)).sas)
    assert.equal(s.resource, 'edgemq.azure-devices.net')
    assert.equal(s.skn, 'iothubowner')
  })

  test('sas --resource --key is pure computation (matches the library byte for byte)', async () => {
    const key = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='
    const r = ok(await runCli(['sas', '--resource', 'myhub.azure-devices.net/devices/dev1', '--key', key, '--expiry', '1700000000', '--raw'], { home: tempHome() }))
    assert.equal(r.stdout.trim(), buildSasToken({ resource: 'myhub.azure-devices.net/devices/dev1', key, expiry: 1700000000 }))
    assert.match(r.stdout, /sig=i%2BYmMcSSZc4KzBi6ejz3l0iL%2B2sN0CE3q6vSm837h2g%3D/)
  })

  test('sas decode: an expired token says how long ago it expired', async () => {
    const expired = ok(await cli('sas', '--device', 'sub_client', '--raw', '--expiry', String(Math.floor(Date.now() / 1000) - 20 * 60))).stdout.trim()
    const [json, table] = await Promise.all([cli('sas', 'decode', expired), cli('sas', 'decode', expired, '-o', 'table')])
    const d = jsonOf<{ expired: boolean; expiryText: string; resource: string; signature: string }>(ok(json))
    assert.equal(d.expired, true)
    assert.match(d.expiryText, /^expired 20 min ago$/)
    assert.equal(d.resource, 'edgemq.azure-devices.net/devices/sub_client')
    assert.equal(d.signature, 'not checked')
    assert.match(ok(table).stdout, /expired 20 min ago/)
  })

  test('sas decode --device says whether the signature is valid for that device', async () => {
    const token = ok(await cli('sas', '--device', 'sub_client', '--raw')).stdout.trim()
    const foreign = buildSasToken({ resource: 'edgemq.azure-devices.net/devices/sub_client', key: Buffer.alloc(32, 3).toString('base64') })
    const [good, bad, other] = await Promise.all([
      cli('sas', 'decode', token, '--device', 'sub_client', '-o', 'table'),
      cli('sas', 'decode', foreign, '--device', 'sub_client'),
      cli('sas', 'decode', token, '--device', 'edge-gateway'),
    ])
    assert.match(ok(good).stdout, /signature: valid \(primary key\)/)
    // 3600 s left prints "1.0 h", a second less "60 min" (humanDuration's unit boundary).
    assert.match(ok(good).stdout, /expires in (5\d min|60 min|1\.0 h)/)
    assert.equal(jsonOf<{ signature: string }>(ok(bad)).signature, 'invalid')
    const o = jsonOf<{ signature: string; reason: string }>(ok(other))
    assert.equal(o.signature, 'invalid')
  })

  test("the seed's az commands: hub device-identity create … --pd and hub generate-sas-token … --du 3600", async () => {
    const h = tempHome()
    const c = ok(await runCli(['hub', 'device-identity', 'create', '--device-id', 'sub_client', '--hub-name', 'edgemq', '--pd', 'edge-gateway'], { home: h }))
    const d = jsonOf<DeviceJson>(c)
    assert.equal(d.deviceId, 'sub_client')
    assert.match(d.parentScopes[0], /^ms-azure-iot-edge:\/\/edge-gateway-/)
    for (const k of ['authentication', 'capabilities', 'cloudToDeviceMessageCount', 'connectionState', 'deviceId', 'deviceScope', 'etag', 'generationId', 'parentScopes', 'status', 'statusUpdatedTime']) {
      assert.ok(k in d, `az's device JSON has "${k}"`)
    }
    const t = ok(await runCli(['hub', 'generate-sas-token', '-n', 'edgemq', '-d', 'sub_client', '--key-type', 'primary', '--du', '3600'], { home: h }))
    const out = jsonOf<Record<string, string>>(t)
    assert.deepEqual(Object.keys(out), ['sas'])
    assert.match(out.sas, /^SharedAccessSignature sr=edgemq\.azure-devices\.net%2Fdevices%2Fsub_client&sig=[^&]+&se=\d+$/)
    const f = parseSasToken(out.sas)
    assert.ok(Math.abs(f.se - (Math.floor(Date.now() / 1000) + 3600)) <= 5)
    assert.equal(verifySasToken(f, [d.authentication.symmetricKey.primaryKey ?? ''], { acceptedResources: [f.resource] }).ok, true)
  })
})
