import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate, createHash } from 'node:crypto'
import { execFile, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import * as tls from 'node:tls'
import type { AddressInfo } from 'node:net'
import {
  certMatchesThumbprint,
  ensureHubPki,
  issueDeviceCert,
  normalizeThumbprint,
  selfSignedDeviceCert,
  thumbprints,
  verifyClientCertAgainstCa,
  writeCertFiles,
  type HubPki,
} from '../../src/pki/index.js'
import { REPO_ROOT } from '../helpers/paths.js'

const made: string[] = []
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'edgemq-pki-'))
  made.push(d)
  return d
}
const mode = (p: string): number => statSync(p).mode & 0o777
const posix = process.platform !== 'win32'

/** DER of the first PEM block, decoded by hand (independent of node:crypto's parser). */
function pemToDer(pem: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)
  assert.ok(m, 'PEM block')
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64')
}

// One shared PKI for the read-only tests: generation is the slow part.
let shared: { dir: string; pki: HubPki; ms: number } | undefined
async function sharedPki(): Promise<{ dir: string; pki: HubPki; ms: number }> {
  if (!shared) {
    const dir = join(tmp(), 'pki')
    const t0 = performance.now()
    const pki = await ensureHubPki(dir, { hubName: 'myhub' })
    shared = { dir, pki, ms: performance.now() - t0 }
  }
  return shared
}

test('ensureHubPki creates a root CA and a server cert that verify', async () => {
  const { pki, ms } = await sharedPki()
  console.log(`# CA + server cert generated in ${ms.toFixed(0)} ms (includes loading @peculiar/x509)`)
  const ca = new X509Certificate(pki.caPem)
  const server = new X509Certificate(pki.serverCertPem)
  assert.equal(ca.ca, true)
  assert.match(ca.subject, /CN=edgemq myhub root CA/)
  assert.ok(ca.verify(ca.publicKey), 'CA is self-signed')
  assert.ok(Date.parse(ca.validTo) - Date.now() > 9 * 365 * 86_400_000, 'CA valid ~10 years')
  assert.equal(server.ca, false)
  assert.ok(server.checkIssued(ca))
  assert.ok(server.verify(ca.publicKey))
  assert.equal(server.checkHost('localhost'), 'localhost')
  assert.equal(server.checkHost('myhub.azure-devices.net'), 'myhub.azure-devices.net')
  assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1')
  assert.ok(server.checkIP('::1'))
  if (/^[A-Za-z0-9.-]+$/.test(hostname())) assert.ok(server.checkHost(hostname()), 'SAN has os.hostname()')
  assert.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extKeyUsage serverAuth only')
  const days = (Date.parse(server.validTo) - Date.now()) / 86_400_000
  assert.ok(days > 700 && days <= 825, `server cert ~2 years (got ${days.toFixed(0)} days)`)
  assert.equal(pki.caPem, readFileSync(pki.caCertPath, 'utf8'))
  assert.equal(pki.serverKeyPem, readFileSync(pki.serverKeyPath, 'utf8'))
})

test('private keys are 0600, the directory 0700, and no temp or lock files remain', { skip: !posix && 'POSIX modes only' }, async () => {
  const { dir, pki } = await sharedPki()
  assert.equal(mode(dir), 0o700)
  assert.equal(mode(pki.caKeyPath), 0o600)
  assert.equal(mode(pki.serverKeyPath), 0o600)
  assert.equal(mode(pki.caCertPath), 0o644)
  assert.deepEqual(readdirSync(dir).sort(), ['ca.key.pem', 'ca.pem', 'server.key.pem', 'server.pem'])
})

test('ensureHubPki is idempotent: a second call loads the same CA and server cert', async () => {
  const { dir, pki } = await sharedPki()
  const again = await ensureHubPki(dir, { hubName: 'myhub' })
  assert.deepEqual(again, pki)
})

test('a new extra host name regenerates only the server cert and keeps earlier names', async () => {
  const dir = join(tmp(), 'pki')
  const a = await ensureHubPki(dir, { hubName: 'myhub', hostNames: ['first.example'] })
  const b = await ensureHubPki(dir, { hubName: 'myhub', hostNames: ['broker.local', '10.1.2.3', 'fe80::1'] })
  assert.equal(b.caPem, a.caPem, 'CA unchanged')
  assert.notEqual(b.serverCertPem, a.serverCertPem, 'server cert regenerated')
  assert.notEqual(b.serverKeyPem, a.serverKeyPem)
  const server = new X509Certificate(b.serverCertPem)
  assert.ok(server.checkHost('broker.local'))
  assert.ok(server.checkHost('first.example'), 'earlier extra name kept')
  assert.equal(server.checkIP('10.1.2.3'), '10.1.2.3')
  assert.ok(server.checkIP('fe80::1'))
  // Same names again (any order / case / IPv6 spelling): nothing changes.
  const c = await ensureHubPki(dir, { hubName: 'myhub', hostNames: ['FE80:0:0::1', 'Broker.Local'] })
  assert.equal(c.serverCertPem, b.serverCertPem)
  await assert.rejects(ensureHubPki(dir, { hubName: 'myhub', hostNames: ['bad host!'] }), /invalid host name/)
})

test('a torn server cert (key from another run) is repaired, the CA kept', async () => {
  const dir = join(tmp(), 'pki')
  const a = await ensureHubPki(dir, { hubName: 'myhub' })
  const other = await selfSignedDeviceCert('x')
  writeFileSync(a.serverKeyPath, other.keyPem, { mode: 0o600 })
  const b = await ensureHubPki(dir, { hubName: 'myhub' })
  assert.equal(b.caPem, a.caPem)
  assert.notEqual(b.serverKeyPem, other.keyPem)
  // The repaired pair must work together in TLS.
  assert.doesNotThrow(() => tls.createSecureContext({ cert: b.serverCertPem, key: b.serverKeyPem }))
})

test('concurrent ensureHubPki on an empty dir (in-process and two child processes) ends with one CA', async () => {
  const root = tmp()
  const dir = join(root, 'pki')
  const go = join(root, 'go')
  // The children run the built library (`npm test` builds dist/ first), as the CLI's processes would.
  const modUrl = pathToFileURL(join(REPO_ROOT, 'dist', 'pki', 'index.js')).href
  // Children warm up (load @peculiar/x509) on a scratch dir, say "ready", then wait for the
  // go file, so all four callers really race on the empty dir.
  const script = `import { ensureHubPki } from ${JSON.stringify(modUrl)}
import { existsSync } from 'node:fs'
await ensureHubPki(${JSON.stringify(join(root, 'warm-'))} + process.pid, { hubName: 'warm' })
process.stderr.write('ready\\n')
while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2))
const p = await ensureHubPki(${JSON.stringify(dir)}, { hubName: 'myhub' })
process.stdout.write(JSON.stringify({ ca: p.caPem, server: p.serverCertPem }))`
  let ready = 0
  let onReady: () => void = () => undefined
  const allReady = new Promise<void>((r) => (onReady = r))
  const child = () =>
    new Promise<{ ca: string; server: string }>((res, rej) => {
      const cp = execFile(process.execPath, ['--input-type=module', '-e', script], (err, stdout, stderr) => {
        if (err) rej(new Error(`child failed: ${stderr}`))
        else res(JSON.parse(stdout) as { ca: string; server: string })
      })
      cp.stderr?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready') && ++ready === 2) onReady()
      })
    })
  const children = [child(), child()]
  await ensureHubPki(join(root, 'warm-self'), { hubName: 'warm' })
  await allReady
  writeFileSync(go, '')
  const results = await Promise.all([
    ensureHubPki(dir, { hubName: 'myhub' }).then((p) => ({ ca: p.caPem, server: p.serverCertPem })),
    ensureHubPki(dir, { hubName: 'myhub' }).then((p) => ({ ca: p.caPem, server: p.serverCertPem })),
    ...children,
  ])
  const onDisk = { ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), server: readFileSync(join(dir, 'server.pem'), 'utf8') }
  for (const r of results) assert.deepEqual(r, onDisk)
  const key = readFileSync(join(dir, 'server.key.pem'), 'utf8')
  assert.doesNotThrow(() => tls.createSecureContext({ cert: onDisk.server, key }), 'server key matches cert')
  assert.ok(new X509Certificate(onDisk.server).verify(new X509Certificate(onDisk.ca).publicKey))
  assert.deepEqual(readdirSync(dir).sort(), ['ca.key.pem', 'ca.pem', 'server.key.pem', 'server.pem'])
})

test('a lock left by a dead process is broken, not waited on', async () => {
  const dir = join(tmp(), 'pki')
  const dead = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, '.lock'), dead)
  const t0 = Date.now()
  const pki = await ensureHubPki(dir, { hubName: 'myhub' })
  assert.ok(Date.now() - t0 < 10_000)
  assert.ok(new X509Certificate(pki.caPem).ca)
  assert.ok(!readdirSync(dir).includes('.lock'))
})

test('TLS: client trusting the CA connects and presents a CA-issued device cert', async () => {
  const { pki } = await sharedPki()
  const dev = await issueDeviceCert(pki, 'dev1')
  // `ca` on the server too, so Node's own chain check (s.authorized) can confirm ours.
  const server = tls.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: false })
  const seen = new Promise<{ cn: unknown; raw: Buffer; authorized: boolean }>((res) => {
    server.once('secureConnection', (s: tls.TLSSocket) => {
      const peer = s.getPeerCertificate()
      res({ cn: peer.subject?.CN, raw: peer.raw, authorized: s.authorized })
      s.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  try {
    for (const servername of ['localhost', 'myhub.azure-devices.net']) {
      const client = tls.connect({ host: '127.0.0.1', port, servername, ca: pki.caPem, cert: dev.certPem, key: dev.keyPem })
      await new Promise<void>((res, rej) => {
        client.once('secureConnect', () => {
          assert.equal(client.authorized, true, `server cert trusted for ${servername}`)
          res()
        })
        client.once('error', rej)
      })
      client.on('error', () => undefined)
      client.end()
    }
    const { cn, raw, authorized } = await seen
    assert.equal(cn, 'dev1')
    assert.equal(authorized, true)
    assert.deepEqual(verifyClientCertAgainstCa(raw, pki.caPem), { ok: true, commonName: 'dev1' })
    assert.equal(thumbprints(raw).sha1, dev.thumbprintSha1)
  } finally {
    server.close()
  }
})

test('self-signed device cert: CN, clientAuth, thumbprints equal hashes of its DER', async () => {
  const dev = await selfSignedDeviceCert('sensor-1', { days: 30 })
  const der = pemToDer(dev.certPem)
  assert.equal(dev.thumbprintSha1, createHash('sha1').update(der).digest('hex').toUpperCase())
  assert.equal(dev.thumbprintSha256, createHash('sha256').update(der).digest('hex').toUpperCase())
  assert.match(dev.thumbprintSha1, /^[0-9A-F]{40}$/)
  assert.match(dev.thumbprintSha256, /^[0-9A-F]{64}$/)
  assert.deepEqual(thumbprints(der), { sha1: dev.thumbprintSha1, sha256: dev.thumbprintSha256 }, 'DER input')
  assert.deepEqual(thumbprints(Buffer.from(dev.certPem)), thumbprints(dev.certPem), 'PEM in a Buffer')
  const x = new X509Certificate(dev.certPem)
  assert.equal(x.subject, 'CN=sensor-1')
  assert.ok(x.verify(x.publicKey), 'self-signed')
  assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2'])
  const days = (Date.parse(x.validTo) - Date.now()) / 86_400_000
  assert.ok(days > 29 && days <= 30)
  assert.throws(() => thumbprints('not a cert'), /not a valid X.509 certificate/)
})

test('normalizeThumbprint and certMatchesThumbprint ignore case, colons and spaces', async () => {
  const dev = await selfSignedDeviceCert('d')
  const colons = dev.thumbprintSha1.toLowerCase().match(/../g)!.join(':')
  assert.equal(normalizeThumbprint(colons), dev.thumbprintSha1)
  assert.equal(normalizeThumbprint(` ${dev.thumbprintSha256.toLowerCase().replace(/(.{8})/g, '$1 ')} `), dev.thumbprintSha256)
  assert.ok(certMatchesThumbprint(dev.certPem, [undefined, colons]))
  assert.ok(certMatchesThumbprint(pemToDer(dev.certPem), ['', dev.thumbprintSha256.toLowerCase()]))
  assert.ok(!certMatchesThumbprint(dev.certPem, [null, '', '00'.repeat(20)]))
  assert.ok(!certMatchesThumbprint(dev.certPem, []))
})

test('verifyClientCertAgainstCa rejects other CAs, self-signed, expired, CA and server certs', async () => {
  const { pki } = await sharedPki()
  const otherPki = await ensureHubPki(join(tmp(), 'other'), { hubName: 'otherhub' })
  const foreign = await issueDeviceCert(otherPki, 'dev1')
  const r1 = verifyClientCertAgainstCa(pemToDer(foreign.certPem), pki.caPem)
  assert.equal(r1.ok, false)
  assert.ok(!r1.ok && /not issued by the hub CA/.test(r1.reason), JSON.stringify(r1))
  // Same CA name but a different key: must fail on the signature, not pass on the name.
  const impostor = await ensureHubPki(join(tmp(), 'impostor'), { hubName: 'myhub' })
  const fake = await issueDeviceCert(impostor, 'dev1')
  const r2 = verifyClientCertAgainstCa(pemToDer(fake.certPem), pki.caPem)
  assert.equal(r2.ok, false, JSON.stringify(r2))

  const self = await selfSignedDeviceCert('dev1')
  assert.equal(verifyClientCertAgainstCa(pemToDer(self.certPem), pki.caPem).ok, false)

  const dev = await issueDeviceCert(pki, 'dev1', { days: 1 })
  const der = pemToDer(dev.certPem)
  assert.deepEqual(verifyClientCertAgainstCa(der, pki.caPem), { ok: true, commonName: 'dev1' })
  const later = verifyClientCertAgainstCa(der, pki.caPem, { now: new Date(Date.now() + 2 * 86_400_000) })
  assert.ok(!later.ok && /expired/.test(later.reason), JSON.stringify(later))
  const earlier = verifyClientCertAgainstCa(der, pki.caPem, { now: new Date(Date.now() - 86_400_000) })
  assert.ok(!earlier.ok && /not yet valid/.test(earlier.reason), JSON.stringify(earlier))

  const caItself = verifyClientCertAgainstCa(pemToDer(pki.caPem), pki.caPem)
  assert.ok(!caItself.ok && /CA certificate/.test(caItself.reason))
  const serverAsClient = verifyClientCertAgainstCa(pemToDer(pki.serverCertPem), pki.caPem)
  assert.ok(!serverAsClient.ok && /clientAuth/.test(serverAsClient.reason))
  const garbage = verifyClientCertAgainstCa(Buffer.from('nope'), pki.caPem)
  assert.ok(!garbage.ok && /not a readable/.test(garbage.reason))
})

test('CN with RFC 2253 specials and non-ASCII is returned exactly', async () => {
  const { pki } = await sharedPki()
  for (const id of ["d-._%*?!(),:=@$'", 'a+b;c"<>\\#', ' lead', '#hash', 'été-中']) {
    const dev = await issueDeviceCert(pki, id)
    assert.deepEqual(verifyClientCertAgainstCa(pemToDer(dev.certPem), pki.caPem), { ok: true, commonName: id })
  }
})

test('writeCertFiles writes cert and key (0600) atomically', async () => {
  const dev = await selfSignedDeviceCert('dev1')
  const out = join(tmp(), 'out', 'nested')
  const { certPath, keyPath } = writeCertFiles(out, 'dev1', dev)
  assert.equal(certPath, join(out, 'dev1.cert.pem'))
  assert.equal(keyPath, join(out, 'dev1.key.pem'))
  assert.equal(readFileSync(certPath, 'utf8'), dev.certPem)
  assert.equal(readFileSync(keyPath, 'utf8'), dev.keyPem)
  if (posix) assert.equal(mode(keyPath), 0o600)
  // Overwrite in place; nothing else left behind. Path separators never escape the directory.
  writeCertFiles(out, 'dev1', dev)
  const weird = writeCertFiles(out, '../x/y', dev)
  assert.equal(resolve(weird.certPath, '..'), out)
  assert.deepEqual(readdirSync(out).sort(), ['___x_y.cert.pem', '___x_y.key.pem', 'dev1.cert.pem', 'dev1.key.pem'])
})

test('openssl verify -CAfile ca.pem accepts the server and device certs', async (t) => {
  let openssl: string
  try {
    openssl = execFileSync('which', ['openssl'], { encoding: 'utf8' }).trim()
  } catch {
    t.skip('openssl not installed')
    return
  }
  const { dir, pki } = await sharedPki()
  const dev = await issueDeviceCert(pki, 'dev1')
  const devPath = join(tmp(), 'dev1.pem')
  writeFileSync(devPath, dev.certPem)
  const out = execFileSync(openssl, ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'server.pem'), devPath], { encoding: 'utf8' })
  assert.match(out, /server\.pem: OK/)
  assert.match(out, /dev1\.pem: OK/)
  // OpenSSL can read our PKCS#8 EC keys (what mosquitto clients are given).
  execFileSync(openssl, ['pkey', '-in', pki.serverKeyPath, '-noout'])
})

test.after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true })
})
