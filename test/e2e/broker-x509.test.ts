/**
 * Issue 4 "Must show", X.509 (PROTOCOL.md §1): thumbprint and CA devices connect with a TLS
 * client certificate and no password (real mosquitto_pub); cert + password, a wrong thumbprint,
 * a module with a certificate, a CA device with a certificate from another issuer → refused.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { startTestHub, type TestHub } from '../helpers/hub.js'
import { cliOk, jsonOf, REPO_ROOT, tempHome } from '../helpers/cli.js'
import { connackCode, iothubUsername, runProc } from '../helpers/mqtt.js'

const POLICY = resolve(REPO_ROOT, '../shared/fixtures/seed-policy-pubsub.json')

interface CertResult {
  certFile: string
  keyFile: string
  thumbprints: { sha1: string; sha256: string }
}

describe('broker: X.509 authentication', () => {
  const home = tempHome()
  const certs = join(home, 'test-certs')
  const other = join(home, 'other-certs')
  let broker: TestHub
  let thumb: CertResult // t1: x509-thumbprint, registered by `cert device --register` (SHA-256)
  let thumbSha1: CertResult // t2: x509-thumbprint, registered by `device create --primary-thumbprint <sha1>`
  let caDev: CertResult // c1: x509-ca, issued by the hub CA
  let foreign: CertResult // CN=c1 but self-signed: not from the hub CA
  let ca: string

  const cli = (args: string[]) => cliOk(home, args)

  before(async () => {
    await cli(['edgehub', 'set', POLICY])
    thumb = jsonOf<CertResult>(await cli(['cert', 'device', '--device', 't1', '--self-signed', '--register', '--out', certs]))
    thumbSha1 = jsonOf<CertResult>(await cli(['cert', 'device', '--device', 't2', '--self-signed', '--out', certs]))
    await cli(['device', 'create', 't2', '--auth', 'x509-thumbprint', '--primary-thumbprint', thumbSha1.thumbprints.sha1])
    caDev = jsonOf<CertResult>(await cli(['cert', 'device', '--device', 'c1', '--register', '--out', certs]))
    foreign = jsonOf<CertResult>(await cli(['cert', 'device', '--device', 'c1', '--self-signed', '--out', other]))
    // A module on the thumbprint device: modules authenticate with SAS only.
    await cli(['module', 'create', 'm1', '--device', 't1'])
    broker = await startTestHub({ inMemory: false, home })
    ca = readFileSync(broker.caFile, 'utf8')
  })

  after(async () => {
    await broker?.stop()
  })

  function mosquittoPub(clientId: string, c: CertResult, extra: string[] = []) {
    return runProc('mosquitto_pub', [
      '-h', 'localhost', '-p', String(broker.ports.mqtts), '-V', 'mqttv311',
      '--cafile', broker.caFile, '--cert', c.certFile, '--key', c.keyFile,
      '-i', clientId, '-u', iothubUsername(clientId),
      '-t', `devices/${clientId}/messages/events/`, '-m', 'hi', '-q', '1',
      ...extra,
    ]).done
  }

  function tlsWith(c: CertResult) {
    return { ca, cert: readFileSync(c.certFile), key: readFileSync(c.keyFile) }
  }

  it('a thumbprint device (SHA-256 registered) connects with mosquitto_pub --cert --key and no password', async () => {
    const r = await mosquittoPub('t1', thumb)
    assert.equal(r.code, 0, r.stderr)
    await broker.waitForLog(/"client":"t1","auth":"x509-thumbprint".*client connected/)
  })

  it('a thumbprint device registered with its SHA-1 thumbprint connects', async () => {
    assert.equal(await connackCode({ port: broker.ports.mqtts, clientId: 't2', tls: tlsWith(thumbSha1) }), 0)
  })

  it('a CA device (cert issued by the hub CA, CN = device id) connects with mosquitto_pub and no password', async () => {
    const r = await mosquittoPub('c1', caDev)
    assert.equal(r.code, 0, r.stderr)
    await broker.waitForLog(/"client":"c1","auth":"x509-ca".*client connected/)
  })

  it('certificate + password → refused (4), with mosquitto_pub and MQTT.js', async () => {
    const r = await mosquittoPub('t1', thumb, ['-P', 'SharedAccessSignature sr=x&sig=y&se=1'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /not authori[sz]ed|bad user name or password|refused/i)
    assert.equal(await connackCode({ port: broker.ports.mqtts, clientId: 't1', password: 'anything', tls: tlsWith(thumb) }), 4)
    await broker.waitForLog(/"client":"t1".*both a client certificate and a password/)
  })

  it('a wrong thumbprint → refused (4)', async () => {
    // t1's certificate presented as t2, whose registered thumbprint is t2's.
    assert.equal(await connackCode({ port: broker.ports.mqtts, clientId: 't2', tls: tlsWith(thumb) }), 4)
    const r = await mosquittoPub('t2', thumb)
    assert.notEqual(r.code, 0)
    await broker.waitForLog(/"client":"t2".*thumbprint matches neither/)
  })

  it('a module presenting a certificate → refused (4)', async () => {
    assert.equal(await connackCode({ port: broker.ports.mqtts, clientId: 't1/m1', tls: tlsWith(thumb) }), 4)
    await broker.waitForLog(/"client":"t1\/m1".*modules authenticate with SAS tokens only/)
  })

  it('a CA device with a certificate not issued by the hub CA → refused (4)', async () => {
    assert.equal(await connackCode({ port: broker.ports.mqtts, clientId: 'c1', tls: tlsWith(foreign) }), 4)
  })

  it('an X.509 device without a certificate (plain port, no password) → refused (4)', async () => {
    assert.equal(await connackCode({ port: broker.ports.mqtt, clientId: 't1' }), 4)
    await broker.waitForLog(/"client":"t1".*no client certificate sent/)
  })
})
