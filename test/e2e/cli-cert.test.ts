/**
 * `edgemq cert ca` and `edgemq cert device` (PRODUCT.md): the CA path alone for
 * `--cafile "$(edgemq cert ca)"`, device certificates from the hub CA (x509-ca) or self-signed
 * (x509-thumbprint) with their thumbprints, and `--register` making them usable at once.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'

import type { DeviceCertResult } from '../../src/cert/index.js'
import { jsonOf, runCli, tempHome, type CliResult } from '../helpers/cli.js'
import type { deviceView } from '../../src/registry/views.js'

/** What `cert device` prints: the library's result type, as JSON. */
type CertJson = DeviceCertResult
type DeviceJson = ReturnType<typeof deviceView>

const ok = (r: CliResult) => {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}
const mode = (p: string) => statSync(p).mode & 0o777
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

/** Thumbprints computed here from the DER, independently of src/pki. */
function fingerprints(pem: string) {
  const der = new X509Certificate(pem).raw
  return { sha1: createHash('sha1').update(der).digest('hex').toUpperCase(), sha256: createHash('sha256').update(der).digest('hex').toUpperCase() }
}

describe('cert commands', () => {
  let home = ''
  let caPath = ''
  const cli = (...args: string[]) => runCli(args, { home })

  before(async () => {
    home = tempHome()
    caPath = ok(await cli('cert', 'ca')).stdout
  })

  test('cert ca prints the CA path alone; --pem prints the PEM; the CA is made once', async () => {
    assert.match(caPath, /^\/.+\.pem\n$/, 'one line: the path, for --cafile "$(edgemq cert ca)"')
    const path = caPath.trim()
    assert.equal(path, join(home, 'pki', 'ca.pem'))
    const ca = new X509Certificate(readFileSync(path))
    assert.equal(ca.ca, true)
    assert.equal(mode(join(home, 'pki')), 0o700)
    assert.equal(mode(join(home, 'pki', 'ca.key.pem')), 0o600)
    const [again, pem] = await Promise.all([cli('cert', 'ca'), cli('cert', 'ca', '--pem')])
    assert.equal(ok(again).stdout, caPath)
    assert.equal(ok(pem).stdout.trim(), readFileSync(path, 'utf8').trim())
    assert.match(pem.stdout, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/)
  })

  test('cert device --self-signed --register: files, thumbprints, and the device registered with them', async (t) => {
    const out = join(tempHome(), 'certs')
    const r = jsonOf<CertJson>(ok(await cli('cert', 'device', '--device', 'cam1', '--self-signed', '--register', '--out', out)))
    assert.equal(r.certFile, join(out, 'cam1.cert.pem'))
    assert.equal(r.keyFile, join(out, 'cam1.key.pem'))
    assert.equal(mode(r.keyFile), 0o600)
    const pem = readFileSync(r.certFile, 'utf8')
    const cert = new X509Certificate(pem)
    assert.equal(cert.subject, 'CN=cam1')
    assert.equal(cert.issuer, cert.subject, 'self-signed')
    assert.deepEqual(r.thumbprints, fingerprints(pem))
    assert.equal(r.issuer, 'self-signed')
    assert.equal(r.registration, 'created')
    assert.equal(r.caFile, caPath.trim())
    const d = jsonOf<DeviceJson>(ok(await cli('device', 'show', 'cam1')))
    assert.equal(d.authentication.type, 'selfSigned')
    assert.equal(d.authentication.x509Thumbprint.primaryThumbprint, r.thumbprints.sha256)
    if (hasOpenssl) {
      // The key really belongs to the certificate (what a TLS client will prove).
      const a = execFileSync('openssl', ['pkey', '-in', r.keyFile, '-pubout'], { encoding: 'utf8' })
      const b = execFileSync('openssl', ['x509', '-in', r.certFile, '-pubkey', '-noout'], { encoding: 'utf8' })
      assert.equal(a, b)
    } else t.diagnostic('openssl not installed: key/cert pairing not cross-checked')
  })

  test('a registered x509-thumbprint device gets a self-signed cert by default; --register rotates its thumbprint', async () => {
    const out = tempHome()
    const first = jsonOf<CertJson>(ok(await cli('cert', 'device', '--device', 'cam1', '--out', out)))
    assert.equal(first.issuer, 'self-signed', 'the device auth type decides')
    assert.equal(first.registration, 'unchanged')
    assert.equal(first.warnings.length, 1)
    const noReg = await cli('cert', 'device', '--device', 'cam1', '--out', out)
    assert.match(noReg.stderr, /^warning: device "cam1" has other thumbprints registered; pass --register/m)
    const reg = jsonOf<CertJson>(ok(await cli('cert', 'device', '--device', 'cam1', '--register', '--out', out)))
    assert.equal(reg.registration, 'updated')
    const d = jsonOf<DeviceJson>(ok(await cli('device', 'show', 'cam1')))
    assert.equal(d.authentication.x509Thumbprint.primaryThumbprint, reg.thumbprints.sha256)
  })

  test('cert device --register without --self-signed: issued by the hub CA, device x509-ca', async () => {
    const out = tempHome()
    const r = jsonOf<CertJson>(ok(await cli('cert', 'device', '--device', 'ca-dev', '--register', '--out', out, '-o', 'json')))
    assert.equal(r.issuer, 'hub-ca')
    assert.equal(r.registration, 'created')
    const cert = new X509Certificate(readFileSync(r.certFile))
    const ca = new X509Certificate(readFileSync(caPath.trim()))
    assert.equal(cert.subject, 'CN=ca-dev')
    assert.equal(cert.checkIssued(ca), true)
    assert.equal(cert.verify(ca.publicKey), true)
    if (hasOpenssl) {
      const v = execFileSync('openssl', ['verify', '-CAfile', caPath.trim(), r.certFile], { encoding: 'utf8' })
      assert.match(v, /: OK$/m)
    }
    assert.equal(jsonOf<DeviceJson>(ok(await cli('device', 'show', 'ca-dev'))).authentication.type, 'certificateAuthority')
  })

  test('without --register the registry is untouched, and a warning says what to run', async () => {
    const out = tempHome()
    const r = ok(await cli('cert', 'device', '--device', 'ghost', '--self-signed', '--out', out))
    const j = jsonOf<CertJson>(r)
    assert.equal(j.registration, 'not registered')
    assert.match(r.stderr, new RegExp(`^warning: device "ghost" is not registered; run \`edgemq device create ghost --auth x509-thumbprint --primary-thumbprint ${j.thumbprints.sha256}\``, 'm'))
    assert.equal((await cli('device', 'show', 'ghost')).code, 1)
    // The printed command works as is.
    ok(await cli('device', 'create', 'ghost', '--auth', 'x509-thumbprint', '--primary-thumbprint', j.thumbprints.sha256))
  })

  test('default --out is <home>/certs; refusals', async () => {
    const r = jsonOf<CertJson>(ok(await cli('cert', 'device', '--device', 'cam1')))
    assert.equal(r.certFile, join(home, 'certs', 'cam1.cert.pem'))
    assert.ok(existsSync(r.keyFile))
    ok(await cli('device', 'create', 'sasdev'))
    const [sas, missing, badId] = await Promise.all([
      cli('cert', 'device', '--device', 'sasdev', '--register'),
      cli('cert', 'device'),
      cli('cert', 'device', '--device', 'bad/id'),
    ])
    for (const [res, re] of [
      [sas, /^error: device "sasdev" authenticates with SAS keys, so --register cannot make this CA-issued certificate its credential$/m],
      [missing, /^error: missing --device$/m],
      [badId, /^error: invalid device id "bad\/id"$/m],
    ] as const) {
      assert.equal(res.code, 1, res.stderr)
      assert.match(res.stderr, re)
      assert.doesNotMatch(res.stderr, /\n\s+at /)
    }
  })
})
