/**
 * Device code that registers through DPS runs unchanged against edgemq (issue 19): the official
 * provisioning SDKs register individual and group enrollments (symmetric key and X.509) with the
 * hub's DPS over MQTT on 8883, the device SDK connects to the `assignedHub` it got and sends
 * telemetry the hub sees; the provisioning service SDK manages enrollments over REST on 443;
 * wrong key, unknown registration and disabled enrollment give DPS's 401002.
 *
 * Ports 8883/443 are fixed (the SDKs dial them): sdk- prefix, run one at a time. The SDK flow runs in
 * a child (helpers/sdk-dps-child.ts) because the SDKs trust the hub CA only through NODE_EXTRA_CA_CERTS.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { startHub, type HubEvent } from '../../src/index.js'
import { issueDeviceCert, selfSignedDeviceCert, type HubPki } from '../../src/pki/index.js'
import { helperScript } from '../helpers/paths.js'

const CHILD = helperScript('sdk-dps-child')

test('azure-iot-provisioning-* SDKs register through edgemq DPS, then azure-iot-device sends to the assigned hub', async () => {
  const hub = await startHub({ ports: { mqtt: null, mqtts: 8883, rest: 443 } })
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-sdk-dps-'))
  try {
    const dps = hub.broker.dps.service()
    const caFile = join(dir, 'hub-ca.pem')
    writeFileSync(caFile, hub.caPem)
    // X.509: an individual enrollment with a self-signed device certificate, a group on the hub CA.
    const self = await selfSignedDeviceCert('sdk-x509-1')
    const issued = await issueDeviceCert(hub.broker.pki as HubPki, 'sdk-ca-dev')
    for (const [id, c] of [['sdk-x509-1', self], ['sdk-ca-dev', issued]] as const) {
      writeFileSync(join(dir, `${id}.cert.pem`), c.certPem)
      writeFileSync(join(dir, `${id}.key.pem`), c.keyPem)
    }
    await dps.putEnrollment({ registrationId: 'sdk-x509-1', attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: self.certPem } } } } }, { mode: 'create' })
    await dps.putEnrollmentGroup({ enrollmentGroupId: 'sdk-ca-group', attestation: { type: 'x509', x509: { caReferences: { primary: 'hub' } } } }, { mode: 'create' })

    const events = hub.events()
    const child = spawn(process.execPath, [...CHILD.execArgv, CHILD.path], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined, NODE_EXTRA_CA_CERTS: caFile, DPS_CS: dps.connectionString(), DPS_ID_SCOPE: dps.idScope, X509_DIR: dir },
    })
    let output = ''
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()))
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    const [code] = (await once(child, 'exit')) as [number | null]
    clearTimeout(timer)
    assert.equal(code, 0, `SDK flow failed:\n${output}`)
    // A promise that never settles ends the child with code 0 too: only the last line proves the flow ran through.
    assert.match(output, /\{"ok":true\}/, `SDK flow stopped early:\n${output}`)

    // Each provisioned device's telemetry reached the hub's event stream, in order.
    const seen: { deviceId: string; n: number }[] = []
    for (let i = 0; i < 4; i++) {
      const ev = (await events.next()).value as HubEvent
      seen.push({ deviceId: ev.deviceId, n: (JSON.parse(ev.payload.toString()) as { n: number }).n })
    }
    await events.return?.()
    assert.deepEqual(seen, [
      { deviceId: 'sdk-dev-1', n: 1 },
      { deviceId: 'sdk-group-dev-7', n: 2 },
      { deviceId: 'sdk-x509-1', n: 3 },
      { deviceId: 'sdk-ca-dev', n: 4 },
    ])
    // The identities DPS created: keys, X.509 kinds, and the initial twin's tags.
    assert.equal((await hub.context.store.getDevice('sdk-x509-1'))?.authType, 'selfSigned')
    assert.equal((await hub.context.store.getDevice('sdk-ca-dev'))?.authType, 'certificateAuthority')
    assert.equal((await hub.getTwin('sdk-dev-1')).tags?.site, 'lab')
    const states = await dps.listRegistrations('sdk-group')
    assert.deepEqual(states.map((s) => s.registrationId).sort(), ['sdk-group-dev-7', 'sdk-group-dev-8'])
  } finally {
    await hub.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
