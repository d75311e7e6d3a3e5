/**
 * The hub's local PKI: a root CA, the broker's TLS server certificate, and device client
 * certificates for X.509 authentication (PROTOCOL.md §1, PRODUCT.md `cert ca` / `cert device`).
 *
 * Library choice: node:crypto can parse and verify certificates (X509Certificate) but cannot
 * create them. @peculiar/x509 is maintained, fully typed, pure JS over WebCrypto (no native
 * build), and does ECDSA natively; node-forge is slower, RSA-centric (no ECDSA certificate
 * signing) and untyped. We use @peculiar/x509 only to *build* certificates and node:crypto for
 * everything on the hot path (thumbprints, verification), so the broker's per-connection auth
 * never loads the library. Keys are ECDSA P-256: fast to generate, and accepted by OpenSSL-based
 * clients (mosquitto) and Node TLS alike.
 *
 * Layout of a PKI directory (mode 0700): ca.pem, ca.key.pem, server.pem, server.key.pem
 * (keys 0600, PKCS#8 PEM). Files are written atomically; concurrent processes coordinate through
 * an O_EXCL lock file and re-read what the winner wrote.
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey, KeyObject, randomBytes, webcrypto } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { chmod, mkdir, readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { EdgeMqError, UsageError } from '../errors.js'
import { withLock, writeFileAtomicSync } from '../util/fs.js'
import { loadX509 } from './x509-lib.js'
import type { Extension } from '@peculiar/x509'

export interface HubPki {
  dir: string
  caCertPath: string
  caKeyPath: string
  serverCertPath: string
  serverKeyPath: string
  caPem: string
  serverCertPem: string
  serverKeyPem: string
  /** Set only for an in-memory PKI (`createInMemoryHubPki`): the paths above are then empty. */
  caKeyPem?: string
}

export interface IssuedCert {
  certPem: string
  keyPem: string
  /** Uppercase hex, no colons (as `az` prints them). */
  thumbprintSha1: string
  thumbprintSha256: string
}

export interface EnsureHubPkiOptions {
  hubName: string
  /** Extra DNS names or IP addresses the broker is reached by (added to the server cert SAN). */
  hostNames?: string[]
}

export type VerifyResult = { ok: true; commonName: string } | { ok: false; reason: string }

const FILES = { caCert: 'ca.pem', caKey: 'ca.key.pem', serverCert: 'server.pem', serverKey: 'server.key.pem', lock: '.lock' } as const
const DAY_MS = 86_400_000
const CA_DAYS = 3650
// ≤ 825 days: Apple platforms reject TLS server certificates valid for longer.
const SERVER_DAYS = 730
const DEVICE_DAYS = 365
// Regenerate the server cert this long before it expires, so a long-running home never serves an expired one.
const SERVER_RENEW_BEFORE_MS = 30 * DAY_MS
// Backdate notBefore: a peer whose clock is a little behind must not see a "not yet valid" cert.
const BACKDATE_MS = 5 * 60_000
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const OID_ANY_EKU = '2.5.29.37.0'

// ---------------------------------------------------------------------------------------------
// Thumbprints and verification (sync, node:crypto only: used per connection by the broker)
// ---------------------------------------------------------------------------------------------

/** SHA-1 and SHA-256 of the certificate's DER, uppercase hex without colons (like `az`). */
export function thumbprints(certPemOrDer: string | Buffer): { sha1: string; sha256: string } {
  const der = toDer(certPemOrDer)
  return {
    sha1: createHash('sha1').update(der).digest('hex').toUpperCase(),
    sha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
  }
}

/** Canonical thumbprint form for comparison: uppercase, colons and whitespace removed. */
export function normalizeThumbprint(s: string): string {
  return s.replace(/[:\s]/g, '').toUpperCase()
}

/**
 * True if the certificate's SHA-1 or SHA-256 thumbprint equals one of `candidates`
 * (registry primary/secondary; empty entries are ignored). Thumbprints are public, so a plain
 * comparison is fine.
 */
export function certMatchesThumbprint(certPemOrDer: string | Buffer, candidates: ReadonlyArray<string | null | undefined>): boolean {
  const want = candidates.filter((c): c is string => typeof c === 'string' && c.trim() !== '').map(normalizeThumbprint)
  if (want.length === 0) return false
  const { sha1, sha256 } = thumbprints(certPemOrDer)
  return want.includes(sha1) || want.includes(sha256)
}

/**
 * X.509 CA authentication: the client cert must be signed directly by the hub CA (one level —
 * edgemq issues device certs straight from its root; intermediate chains are not followed), be
 * within its validity dates (as must the CA), not be a CA itself, allow clientAuth if it restricts
 * its extended key usage, and carry a subject CN (the device id, compared by the caller).
 */
export function verifyClientCertAgainstCa(certDer: Buffer, caPem: string, opts: { now?: Date } = {}): VerifyResult {
  const now = (opts.now ?? new Date()).getTime()
  let cert: X509Certificate
  let ca: X509Certificate
  try {
    cert = new X509Certificate(certDer)
  } catch {
    return { ok: false, reason: 'client certificate is not a readable X.509 certificate' }
  }
  try {
    ca = new X509Certificate(caPem)
  } catch {
    return { ok: false, reason: 'hub CA certificate is not readable' }
  }
  if (cert.ca) return { ok: false, reason: 'client certificate is a CA certificate (basicConstraints CA:TRUE)' }
  // checkIssued compares issuer/subject names and the key identifiers; verify checks the signature.
  if (!cert.checkIssued(ca)) {
    return { ok: false, reason: `client certificate was not issued by the hub CA (issuer "${oneLine(cert.issuer)}", CA "${oneLine(ca.subject)}")` }
  }
  if (!cert.verify(ca.publicKey)) return { ok: false, reason: 'client certificate signature does not verify with the hub CA key' }
  const dates = validityProblem(cert, now, 'client certificate') ?? validityProblem(ca, now, 'hub CA certificate')
  if (dates) return { ok: false, reason: dates }
  const eku = cert.keyUsage // Node names the *extended* key usage OIDs `keyUsage`
  if (eku && eku.length > 0 && !eku.includes(OID_CLIENT_AUTH) && !eku.includes(OID_ANY_EKU)) {
    return { ok: false, reason: 'client certificate is not valid for client authentication (extendedKeyUsage lacks clientAuth)' }
  }
  const cn = commonNameOf(cert)
  if (!cn.ok) return cn
  return { ok: true, commonName: cn.commonName }
}

function validityProblem(cert: X509Certificate, now: number, what: string): string | undefined {
  const from = Date.parse(cert.validFrom)
  const to = Date.parse(cert.validTo)
  if (Number.isNaN(from) || Number.isNaN(to)) return `${what} has unreadable validity dates`
  if (now < from) return `${what} is not yet valid (valid from ${new Date(from).toISOString()})`
  if (now > to) return `${what} expired on ${new Date(to).toISOString()}`
  return undefined
}

/**
 * Subject CN from Node's `subject` text. Node prints one attribute per line in RFC 2253 escaped
 * form (`\,` for specials, `\0A` hex for control bytes, raw UTF-8 otherwise), so newlines inside
 * values are escaped and splitting on "\n" is safe. Two CNs are refused: which one is the
 * identity would be ambiguous.
 */
function commonNameOf(cert: X509Certificate): VerifyResult {
  const cns = cert.subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => unescapeRfc2253(line.slice(3)))
  if (cns.length === 0) return { ok: false, reason: 'client certificate has no subject CN' }
  if (cns.length > 1) return { ok: false, reason: 'client certificate has more than one subject CN' }
  return { ok: true, commonName: cns[0] }
}

function unescapeRfc2253(s: string): string {
  const bytes: number[] = []
  const raw = Buffer.from(s, 'utf8')
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]
    if (b === 0x5c /* \ */ && i + 1 < raw.length) {
      const hex = raw.subarray(i + 1, i + 3).toString('latin1')
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(Number.parseInt(hex, 16))
        i += 2
      } else {
        bytes.push(raw[i + 1])
        i += 1
      }
    } else {
      bytes.push(b)
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

const oneLine = (dn: string) => dn.split('\n').join(', ')

function toDer(input: string | Buffer): Buffer {
  try {
    return new X509Certificate(input).raw // accepts PEM (first block) or DER
  } catch {
    throw new UsageError('not a valid X.509 certificate (expected PEM or DER)')
  }
}

// ---------------------------------------------------------------------------------------------
// Hub PKI directory
// ---------------------------------------------------------------------------------------------

/**
 * Create (first use) or load the hub's root CA and TLS server certificate in `dir`.
 * Fast path: read and check the files without locking. Anything missing or stale is (re)made under
 * the directory's lock, after re-reading — so concurrent callers end with one CA, and the loser
 * simply returns what the winner wrote. The CA is never replaced once it exists (clients trust
 * it); the server cert is regenerated if it is missing, torn (key ≠ cert), not from this CA,
 * near expiry, or lacks a requested host name.
 */
export async function ensureHubPki(dir: string, opts: EnsureHubPkiOptions): Promise<HubPki> {
  const names = wantedNames(opts)
  const paths = pkiPaths(resolve(dir))
  const first = await readPki(paths)
  if (first.state === 'ok' && !serverProblem(first.pki, names)) return first.pki

  await mkdir(paths.dir, { recursive: true, mode: 0o700 })
  await tightenDirMode(paths.dir)
  return withLock(join(paths.dir, FILES.lock), async () => {
    let cur = await readPki(paths)
    if (cur.state === 'no-ca') {
      await createCa(paths, opts.hubName)
      cur = await readPki(paths)
    }
    if (cur.state === 'no-ca') throw new EdgeMqError(`could not create the hub CA in ${paths.dir}`)
    const base = cur.state === 'ok' ? cur.pki : cur.partial
    const problem = cur.state === 'ok' ? serverProblem(cur.pki, names) : 'missing'
    if (problem) {
      await createServerCert(paths, base.caPem, opts.hubName, mergeNames(names, cur.state === 'ok' ? cur.pki.serverCertPem : undefined))
      const again = await readPki(paths)
      if (again.state !== 'ok') throw new EdgeMqError(`could not create the server certificate in ${paths.dir}`)
      return again.pki
    }
    return base
  })
}

/**
 * A hub PKI that lives only in memory (in-memory hubs, `startHub()`, `broker start --in-memory`):
 * a fresh CA and server certificate, nothing written to disk. The path fields are empty strings;
 * `caKeyPem` carries the CA key so device certificates can still be issued.
 */
export async function createInMemoryHubPki(opts: EnsureHubPkiOptions): Promise<HubPki> {
  const names = wantedNames(opts)
  const ca = await generateCa(opts.hubName)
  const server = await issueLeaf(ca.certPem, ca.keyPem, `${opts.hubName.toLowerCase()}.azure-devices.net`, 'server', SERVER_DAYS, names)
  return { dir: '', caCertPath: '', caKeyPath: '', serverCertPath: '', serverKeyPath: '', caPem: ca.certPem, caKeyPem: ca.keyPem, serverCertPem: server.certPem, serverKeyPem: server.keyPem }
}

interface PkiPaths {
  dir: string
  caCertPath: string
  caKeyPath: string
  serverCertPath: string
  serverKeyPath: string
}

function pkiPaths(dir: string): PkiPaths {
  return {
    dir,
    caCertPath: join(dir, FILES.caCert),
    caKeyPath: join(dir, FILES.caKey),
    serverCertPath: join(dir, FILES.serverCert),
    serverKeyPath: join(dir, FILES.serverKey),
  }
}

type ReadResult = { state: 'ok'; pki: HubPki } | { state: 'no-server'; partial: HubPki } | { state: 'no-ca' }

async function readPki(p: PkiPaths): Promise<ReadResult> {
  const read = (f: string) => readFile(f, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)))
  const [caPem, serverCertPem, serverKeyPem] = await Promise.all([read(p.caCertPath), read(p.serverCertPath), read(p.serverKeyPath)])
  // ca.pem is written last when the CA is created, so its presence means the CA is complete.
  if (caPem === undefined) return { state: 'no-ca' }
  const pki: HubPki = { ...p, caPem, serverCertPem: serverCertPem ?? '', serverKeyPem: serverKeyPem ?? '' }
  if (serverCertPem === undefined || serverKeyPem === undefined) return { state: 'no-server', partial: pki }
  return { state: 'ok', pki }
}

interface WantedNames {
  dns: string[]
  ips: string[]
}

const DNS_NAME = /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*$/

function wantedNames(opts: EnsureHubPkiOptions): WantedNames {
  if (!/^[A-Za-z0-9-]{1,63}$/.test(opts.hubName)) {
    throw new UsageError(`invalid hub name "${opts.hubName}"`, 'use letters, digits and hyphens (it becomes <hub>.azure-devices.net)')
  }
  const dns = new Set<string>(['localhost', `${opts.hubName.toLowerCase()}.azure-devices.net`])
  const ips = new Set<string>(['127.0.0.1', '::1'])
  // The machine's own name is best effort: skip it if it is not a valid DNS name.
  const own = hostname().toLowerCase()
  if (DNS_NAME.test(own) && own.length <= 253) dns.add(own)
  for (const raw of opts.hostNames ?? []) {
    const h = raw.trim()
    if (isIP(h)) ips.add(canonicalIp(h))
    else if (DNS_NAME.test(h) && h.length <= 253) dns.add(h.toLowerCase())
    else throw new UsageError(`invalid host name "${raw}"`, 'give a DNS name (e.g. broker.local) or an IP address')
  }
  return { dns: [...dns], ips: [...ips] }
}

/** One spelling per address so SAN comparisons are exact (`::1` vs `0:0:…:1`). */
function canonicalIp(ip: string): string {
  if (isIP(ip) !== 6) return ip
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
}

/** DNS names and IPs in an existing certificate's SAN. */
function sanOf(cert: X509Certificate): WantedNames {
  const dns: string[] = []
  const ips: string[] = []
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) dns.push(entry.slice(4).toLowerCase())
    else if (entry.startsWith('IP Address:')) {
      const ip = entry.slice(11)
      if (isIP(ip)) ips.push(canonicalIp(ip))
    }
  }
  return { dns, ips }
}

/** Keep names an earlier run asked for, so alternating `--host` values do not regenerate forever. */
function mergeNames(wanted: WantedNames, existingPem: string | undefined): WantedNames {
  if (!existingPem) return wanted
  try {
    const had = sanOf(new X509Certificate(existingPem))
    return {
      dns: [...new Set([...wanted.dns, ...had.dns.filter((d) => DNS_NAME.test(d))])],
      ips: [...new Set([...wanted.ips, ...had.ips])],
    }
  } catch {
    return wanted
  }
}

/** Why the server cert must be regenerated, or undefined if it is fine. */
function serverProblem(pki: HubPki, wanted: WantedNames): string | undefined {
  let cert: X509Certificate
  let ca: X509Certificate
  try {
    cert = new X509Certificate(pki.serverCertPem)
    ca = new X509Certificate(pki.caPem)
  } catch {
    return 'unreadable'
  }
  try {
    const fromKey = createPublicKey(createPrivateKey(pki.serverKeyPem)).export({ type: 'spki', format: 'der' })
    if (!fromKey.equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) return 'key does not match certificate'
  } catch {
    return 'unreadable key'
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not issued by the current CA'
  if (Date.parse(cert.validTo) - Date.now() < SERVER_RENEW_BEFORE_MS) return 'expiring'
  const have = sanOf(cert)
  const missing = wanted.dns.find((d) => !have.dns.includes(d)) ?? wanted.ips.find((ip) => !have.ips.includes(ip))
  return missing === undefined ? undefined : `lacks ${missing}`
}

async function tightenDirMode(dir: string): Promise<void> {
  if (process.platform === 'win32') return
  await chmod(dir, 0o700).catch(() => undefined) // not ours (shared dir): leave it, keys are 0600 anyway
}

// ---------------------------------------------------------------------------------------------
// Certificate generation (@peculiar/x509, loaded lazily)
// ---------------------------------------------------------------------------------------------

type NodeCryptoKey = webcrypto.CryptoKey
type NodeKeyPair = webcrypto.CryptoKeyPair

interface SigningKey {
  key: CryptoKey
  algorithm: EcdsaParams
}

async function newKeyPair(): Promise<NodeKeyPair> {
  return webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
}

function keyToPem(key: NodeCryptoKey): string {
  return String(KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }))
}

/** The CA key as a WebCrypto signing key; accepts PKCS#8 or SEC1 PEM on the NIST curves. */
async function importSigningKey(pem: string): Promise<SigningKey> {
  const ko = createPrivateKey(pem)
  const curve = ko.asymmetricKeyDetails?.namedCurve
  const map: Record<string, { namedCurve: string; hash: string }> = {
    prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
    secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
    secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
  }
  const alg = ko.asymmetricKeyType === 'ec' && curve ? map[curve] : undefined
  if (!alg) throw new EdgeMqError(`unsupported CA key type (${ko.asymmetricKeyType ?? 'unknown'} ${curve ?? ''}); edgemq signs with ECDSA P-256/384/521`)
  const der = ko.export({ type: 'pkcs8', format: 'der' })
  const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: alg.namedCurve }, false, ['sign'])
  return { key: key as unknown as CryptoKey, algorithm: { name: 'ECDSA', hash: alg.hash } }
}

/** Positive 128-bit serial (RFC 5280: ≤ 20 octets, unpredictable). */
function serialNumber(): string {
  const b = randomBytes(16)
  b[0] = (b[0] & 0x7f) | 0x01
  return b.toString('hex')
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now()
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) }
}

function checkDays(days: number | undefined, fallback: number): number {
  const d = days ?? fallback
  if (!Number.isInteger(d) || d < 1 || d > 36500) throw new UsageError(`invalid validity "${String(days)}" days`, 'use a whole number of days between 1 and 36500')
  return d
}

function checkDeviceId(deviceId: string): void {
  // The registry enforces Azure's charset; here we only refuse what cannot be a CN at all.
  if (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > 128) {
    throw new UsageError(`invalid device id "${String(deviceId)}"`, 'device ids are 1-128 characters')
  }
}

/** `toString('pem')` uses CRLF; files and comparisons are simpler with LF and a final newline. */
function pemOf(cert: { toString(format: 'pem'): string }): string {
  return cert.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n'
}

async function createCa(p: PkiPaths, hubName: string): Promise<void> {
  const { certPem, keyPem } = await generateCa(hubName)
  // Key first, certificate last: ca.pem is the "CA complete" marker readPki relies on.
  writeFileAtomicSync(p.caKeyPath, keyPem, 0o600)
  writeFileAtomicSync(p.caCertPath, certPem, 0o644)
}

async function generateCa(hubName: string): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509()
  const keys = await newKeyPair()
  const domKeys = keys as unknown as CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: new x509.Name([{ CN: [{ utf8String: `edgemq ${hubName} root CA` }] }, { O: [{ utf8String: 'edgemq' }] }]),
    ...validity(CA_DAYS),
    keys: domKeys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(domKeys.publicKey),
    ],
  })
  return { certPem: pemOf(cert), keyPem: keyToPem(keys.privateKey) }
}

/** Sign a leaf certificate with the CA in `caPem` / `caKeyPem`. */
async function issueLeaf(
  caPem: string,
  caKeyPem: string,
  subjectCn: string,
  usage: 'server' | 'client',
  days: number,
  san: WantedNames | undefined,
): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509()
  const ca = new x509.X509Certificate(caPem)
  const signer = await importSigningKey(caKeyPem)
  const keys = await newKeyPair()
  const pub = keys.publicKey as unknown as CryptoKey
  const caSki = ca.getExtension(x509.SubjectKeyIdentifierExtension)
  const extensions: Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(pub),
    caSki ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId) : await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
  ]
  if (san) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...san.dns.map((value) => ({ type: 'dns' as const, value })),
        ...san.ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
    )
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: new x509.Name([{ CN: [{ utf8String: subjectCn }] }]),
    issuer: ca.subjectName,
    ...validity(days),
    publicKey: pub,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    extensions,
  })
  return { certPem: pemOf(cert), keyPem: keyToPem(keys.privateKey) }
}

async function createServerCert(p: PkiPaths, caPem: string, hubName: string, names: WantedNames): Promise<void> {
  let caKeyPem: string
  try {
    caKeyPem = await readFile(p.caKeyPath, 'utf8')
  } catch {
    throw new EdgeMqError(`the hub CA key ${p.caKeyPath} is missing, so the server certificate cannot be (re)issued`, {
      code: 'PKI_INCOMPLETE',
      hint: `restore it, or delete ${p.dir} to create a new CA (clients must then trust the new ca.pem)`,
    })
  }
  const { certPem, keyPem } = await issueLeaf(caPem, caKeyPem, `${hubName.toLowerCase()}.azure-devices.net`, 'server', SERVER_DAYS, names)
  // Key before cert; a crash in between leaves a key/cert mismatch, which serverProblem detects and repairs.
  writeFileAtomicSync(p.serverKeyPath, keyPem, 0o600)
  writeFileAtomicSync(p.serverCertPath, certPem, 0o644)
}

/** A client certificate for `deviceId` (subject CN), signed by the hub CA — for x509-ca devices. */
export async function issueDeviceCert(pki: HubPki, deviceId: string, opts: { days?: number } = {}): Promise<IssuedCert> {
  checkDeviceId(deviceId)
  const days = checkDays(opts.days, DEVICE_DAYS)
  let caKeyPem: string
  try {
    caKeyPem = pki.caKeyPem ?? (await readFile(pki.caKeyPath, 'utf8'))
  } catch {
    throw new EdgeMqError(`cannot read the hub CA key ${pki.caKeyPath}`, { code: 'PKI_INCOMPLETE' })
  }
  const leaf = await issueLeaf(pki.caPem, caKeyPem, deviceId, 'client', days, undefined)
  return withThumbprints(leaf)
}

/** A self-signed client certificate (CN = deviceId) — for x509-thumbprint devices. */
export async function selfSignedDeviceCert(deviceId: string, opts: { days?: number } = {}): Promise<IssuedCert> {
  checkDeviceId(deviceId)
  const days = checkDays(opts.days, DEVICE_DAYS)
  const x509 = await loadX509()
  const keys = await newKeyPair()
  const domKeys = keys as unknown as CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: new x509.Name([{ CN: [{ utf8String: deviceId }] }]),
    ...validity(days),
    keys: domKeys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.SubjectKeyIdentifierExtension.create(domKeys.publicKey),
    ],
  })
  return withThumbprints({ certPem: pemOf(cert), keyPem: keyToPem(keys.privateKey) })
}

function withThumbprints(c: { certPem: string; keyPem: string }): IssuedCert {
  const t = thumbprints(c.certPem)
  return { ...c, thumbprintSha1: t.sha1, thumbprintSha256: t.sha256 }
}

// ---------------------------------------------------------------------------------------------
// Writing device cert files (`edgemq cert device --out`)
// ---------------------------------------------------------------------------------------------

/**
 * Write `<deviceId>.cert.pem` (0644) and `<deviceId>.key.pem` (0600) into `outDir` atomically.
 * Characters unsafe in file names (on any OS) become `_`. Synchronous: a one-off CLI step.
 */
export function writeCertFiles(outDir: string, deviceId: string, files: { certPem: string; keyPem: string }): { certPath: string; keyPath: string } {
  checkDeviceId(deviceId)
  const dir = resolve(outDir)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const base = deviceId.replace(/[^A-Za-z0-9._@=,()!$'%-]/g, '_').replace(/^\.+/, (m) => '_'.repeat(m.length))
  const certPath = join(dir, `${base}.cert.pem`)
  const keyPath = join(dir, `${base}.key.pem`)
  writeFileAtomicSync(keyPath, files.keyPem, 0o600)
  writeFileAtomicSync(certPath, files.certPem, 0o644)
  return { certPath, keyPath }
}
