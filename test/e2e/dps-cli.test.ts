/**
 * `edgemq dps …` through the real binary on a temp home (issue 19): az iot dps's commands and
 * flags, the DPS REST JSON shapes az prints, exit codes and messages for what is refused.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'

import type { DeviceRegistrationState, EnrollmentGroup, IndividualEnrollment } from '../../src/dps/index.js'
import { selfSignedDeviceCert } from '../../src/pki/index.js'
import { jsonOf, runCli, tempHome, type CliResult } from '../helpers/cli.js'

const ok = (r: CliResult) => {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}

describe('dps commands', () => {
  let home = ''
  const cli = (...args: string[]) => runCli(args, { home })
  let created: IndividualEnrollment

  before(async () => {
    home = tempHome()
    created = jsonOf<IndividualEnrollment>(
      ok(
        await cli('dps', 'enrollment', 'create', '--enrollment-id', 'thermo-1', '--attestation-type', 'symmetrickey', '--did', 'thermo-dev', '--initial-twin-tags', '{"site":"lab"}', '--initial-twin-properties', '{"interval":5}', '--ee', 'true', '-n', 'my-dps', '-g', 'my-rg'),
      ),
    )
  })

  test('enrollment create prints the IndividualEnrollment JSON with generated keys', () => {
    assert.deepEqual(Object.keys(created).sort(), [
      'allocationPolicy',
      'attestation',
      'capabilities',
      'createdDateTimeUtc',
      'deviceId',
      'etag',
      'initialTwin',
      'iotHubHostName',
      'iotHubs',
      'lastUpdatedDateTimeUtc',
      'provisioningStatus',
      'registrationId',
      'reprovisionPolicy',
    ])
    assert.equal(created.registrationId, 'thermo-1')
    assert.equal(created.deviceId, 'thermo-dev')
    assert.equal(created.attestation.type, 'symmetricKey')
    assert.equal(Buffer.from(created.attestation.symmetricKey?.primaryKey ?? '', 'base64').length, 32)
    assert.deepEqual(created.initialTwin, { tags: { site: 'lab' }, properties: { desired: { interval: 5 } } })
    assert.equal(created.capabilities.iotEdge, true)
    assert.equal(created.provisioningStatus, 'enabled')
    assert.deepEqual(created.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: true })
  })

  test('show, list, update with the etag, a stale etag refused; duplicate and unknown ids exit 1', async () => {
    const shown = jsonOf<IndividualEnrollment>(ok(await cli('dps', 'enrollment', 'show', '--eid', 'thermo-1')))
    assert.equal(shown.etag, created.etag)
    assert.deepEqual(
      jsonOf<IndividualEnrollment[]>(ok(await cli('dps', 'enrollment', 'list'))).map((e) => e.registrationId),
      ['thermo-1'],
    )
    const updated = jsonOf<IndividualEnrollment>(ok(await cli('dps', 'enrollment', 'update', '--eid', 'thermo-1', '--provisioning-status', 'disabled', '--rp', 'reprovisionandresetdata', '--etag', created.etag)))
    assert.equal(updated.provisioningStatus, 'disabled')
    assert.deepEqual(updated.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: false })
    assert.equal(updated.attestation.symmetricKey?.primaryKey, created.attestation.symmetricKey?.primaryKey, 'keys are kept')
    assert.notEqual(updated.etag, created.etag)
    const stale = await cli('dps', 'enrollment', 'update', '--eid', 'thermo-1', '--ps', 'enabled', '--etag', created.etag)
    assert.equal(stale.code, 1)
    assert.match(stale.stderr, /etag ".*" does not match/)

    const dup = await cli('dps', 'enrollment', 'create', '--eid', 'thermo-1', '--at', 'symmetrickey')
    assert.equal(dup.code, 1)
    assert.match(dup.stderr, /enrollment "thermo-1" already exists/)
    const unknown = await cli('dps', 'enrollment', 'show', '--eid', 'nobody')
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /error: enrollment "nobody" not found/)
    assert.equal(unknown.stdout, '')
  })

  test('refused input: tpm, a bad key, keys with x509, a missing certificate file', async () => {
    const tpm = await cli('dps', 'enrollment', 'create', '--eid', 't', '--at', 'tpm')
    assert.equal(tpm.code, 1)
    assert.match(tpm.stderr, /TPM attestation is not supported/)
    const badKey = await cli('dps', 'enrollment', 'create', '--eid', 't', '--at', 'symmetrickey', '--pk', 'not-base64!')
    assert.equal(badKey.code, 1)
    assert.match(badKey.stderr, /primary key is not valid base64/)
    const mixed = await cli('dps', 'enrollment', 'create', '--eid', 't', '--at', 'x509', '--pk', created.attestation.symmetricKey?.primaryKey ?? '')
    assert.equal(mixed.code, 1)
    assert.match(mixed.stderr, /for symmetric key attestation, not x509/)
    const noFile = await cli('dps', 'enrollment', 'create', '--eid', 't', '--at', 'x509', '--cp', join(home, 'missing.pem'))
    assert.equal(noFile.code, 1)
    assert.match(noFile.stderr, /file ".*missing\.pem" not found/)
  })

  test('an X.509 enrollment shows the certificate as info (thumbprints), never the PEM', async () => {
    const cert = await selfSignedDeviceCert('cam-1')
    const file = join(home, 'cam-1.pem')
    writeFileSync(file, cert.certPem)
    const e = jsonOf<IndividualEnrollment>(ok(await cli('dps', 'enrollment', 'create', '--eid', 'cam-1', '--at', 'x509', '--cp', file)))
    const primary = e.attestation.x509?.clientCertificates?.primary
    assert.equal(primary?.certificate, null)
    assert.equal(primary?.info?.sha1Thumbprint, cert.thumbprintSha1)
    assert.equal(primary?.info?.sha256Thumbprint, cert.thumbprintSha256)
    assert.match(primary?.info?.subjectName ?? '', /CN=cam-1/)
    ok(await cli('dps', 'enrollment', 'delete', '--eid', 'cam-1'))
    assert.equal((await cli('dps', 'enrollment', 'show', '--eid', 'cam-1')).code, 1)
  })

  test('enrollment groups and compute-device-key (from the group, and offline from its key)', async () => {
    const g = jsonOf<EnrollmentGroup>(ok(await cli('dps', 'enrollment-group', 'create', '--gid', 'sensors', '--initial-twin-tags', '{"kind":"sensor"}')))
    assert.equal(g.enrollmentGroupId, 'sensors')
    assert.equal(g.attestation.type, 'symmetricKey')
    const groupKey = g.attestation.symmetricKey?.primaryKey as string
    const expected = createHmac('sha256', Buffer.from(groupKey, 'base64')).update('sensor-042').digest('base64')
    const fromGroup = jsonOf<{ key: string }>(ok(await cli('dps', 'enrollment-group', 'compute-device-key', '--eid', 'sensors', '--rid', 'sensor-042')))
    assert.equal(fromGroup.key, expected)
    const offline = await runCli(['dps', 'enrollment-group', 'compute-device-key', '--key', groupKey, '--registration-id', 'sensor-042', '-o', 'tsv'], { home: tempHome() })
    assert.equal(offline.code, 0, offline.stderr)
    assert.match(offline.stdout, new RegExp(expected.replace(/[+/]/g, '\\$&')))
    const ca = jsonOf<EnrollmentGroup>(ok(await cli('dps', 'enrollment-group', 'create', '--gid', 'cams', '--ca-name', 'hub')))
    assert.deepEqual(ca.attestation.x509?.caReferences, { primary: 'hub' })
    assert.deepEqual(
      jsonOf<EnrollmentGroup[]>(ok(await cli('dps', 'enrollment-group', 'list'))).map((x) => x.enrollmentGroupId),
      ['cams', 'sensors'],
    )
    const noGroup = await cli('dps', 'enrollment-group', 'show', '--gid', 'nope')
    assert.equal(noGroup.code, 1)
    assert.match(noGroup.stderr, /enrollment group "nope" not found/)
  })

  test('registrations: none yet, unknown one exits 1; connection-string and hub show carry the id scope', async () => {
    assert.deepEqual(jsonOf<DeviceRegistrationState[]>(ok(await cli('dps', 'enrollment-group', 'registration', 'list', '--gid', 'sensors', '--top', '5'))), [])
    const missing = await cli('dps', 'enrollment', 'registration', 'show', '--eid', 'thermo-1')
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /registration "thermo-1" not found/)
    const cs = jsonOf<{ connectionString: string; idScope: string }>(ok(await cli('dps', 'connection-string', 'show')))
    assert.match(cs.connectionString, /^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=[A-Za-z0-9+/]{43}=$/)
    assert.match(cs.idScope, /^0ne[0-9A-F]{8}$/)
    // az's -l: this DPS's own string is accepted, another key is refused.
    assert.deepEqual(jsonOf<unknown[]>(ok(await cli('dps', 'enrollment-group', 'list', '-l', cs.connectionString, '--auth-type', 'key', '--top', '1'))).length, 1)
    const forged = await cli('dps', 'enrollment', 'list', '-l', cs.connectionString.replace(/SharedAccessKey=.*$/, `SharedAccessKey=${Buffer.alloc(32).toString('base64')}`))
    assert.equal(forged.code, 1)
    assert.match(forged.stderr, /--login: the key is not a key of policy "provisioningserviceowner"/)
    const hub = jsonOf<{ dps: { idScope: string; assignedHub: string } }>(ok(await cli('hub', 'show')))
    assert.equal(hub.dps.idScope, cs.idScope)
    assert.equal(hub.dps.assignedHub, 'localhost')
  })
})
