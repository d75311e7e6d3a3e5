/**
 * SAS tokens (PROTOCOL.md §2): the spec's test vectors, a cross-check against an independent
 * HMAC implementation (crypto-js), and every way verification must refuse a token.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import CryptoJS from 'crypto-js'

import {
  buildSasToken,
  CLOCK_SKEW_SECS,
  deviceResource,
  encodeUriComponentStrict,
  humanDuration,
  parseSasToken,
  SasFormatError,
  sasFromConnectionString,
  verifySasToken,
} from '../../src/sas/index.js'
import { describeSasToken } from '../../src/sas/describe.js'
import { REPO_ROOT } from '../helpers/cli.js'
import { mulberry32 as rng } from '../helpers/prng.js'

const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='
const SE = 1700000000


/**
 * The oracle: written from the spec text alone, sharing no code with src/sas. crypto-js
 * provides HMAC-SHA256 and Base64 independently of node:crypto.
 */
function oracleToken(resource: string, keyB64: string, se: number, skn?: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
  const sr = enc(resource)
  const sig = CryptoJS.HmacSHA256(`${sr}\n${se}`, CryptoJS.enc.Base64.parse(keyB64)).toString(CryptoJS.enc.Base64)
  return `SharedAccessSignature sr=${sr}&sig=${enc(sig)}&se=${se}${skn ? `&skn=${enc(skn)}` : ''}`
}

describe('PROTOCOL.md §2 test vectors', () => {
  const vectors: [string, string][] = [
    ['myhub.azure-devices.net/devices/dev1', 'i+YmMcSSZc4KzBi6ejz3l0iL+2sN0CE3q6vSm837h2g='],
    ['myhub.azure-devices.net/devices/dev1/modules/mod1', 'kA6xjFLkZvk4Cdh0nD8uWAzassq6PB47f7BepMMtmlY='],
    ['myhub.azure-devices.net', 'iIzEw6hi6GK79RY5jNXO6QeQkSL/Ax4zTmy44X2G1VY='],
  ]
  for (const [resource, sig] of vectors) {
    test(resource, () => {
      const token = buildSasToken({ resource, key: KEY, expiry: SE })
      assert.equal(token, `SharedAccessSignature sr=${encodeURIComponent(resource)}&sig=${encodeURIComponent(sig)}&se=${SE}`)
      const f = parseSasToken(token)
      assert.equal(f.sig, sig)
      assert.equal(f.resource, resource)
      assert.equal(f.se, SE)
      // The oracle agrees with the spec too (guards the oracle itself).
      assert.equal(oracleToken(resource, KEY, SE), token)
    })
  }

  test('deviceResource builds the spec resources', () => {
    assert.equal(deviceResource('myhub', 'dev1'), 'myhub.azure-devices.net/devices/dev1')
    assert.equal(deviceResource('myhub', 'dev1', 'mod1'), 'myhub.azure-devices.net/devices/dev1/modules/mod1')
    assert.equal(deviceResource('myhub.azure-devices.net', 'dev1'), 'myhub.azure-devices.net/devices/dev1')
  })
})

describe('cross-check against crypto-js', () => {
  // Every character IoT Hub allows in ids, including the ones encodeURIComponent leaves alone (!'()*).
  const ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.+%_#*?!(),:=@$'"
  const rand = rng(0x5a5)
  const pick = (n: number) => Array.from({ length: n }, () => ID_CHARS[Math.floor(rand() * ID_CHARS.length)]).join('')
  const randomKey = () => Buffer.from(Array.from({ length: 16 + Math.floor(rand() * 49) }, () => Math.floor(rand() * 256))).toString('base64')

  test('200 random device/module/service tokens match byte for byte', () => {
    for (let i = 0; i < 200; i++) {
      const hub = `hub${pick(3).replace(/[^A-Za-z0-9]/g, 'x')}`
      const kind = i % 3
      const resource = kind === 2 ? `${hub}.azure-devices.net` : deviceResource(hub, pick(1 + Math.floor(rand() * 128)), kind === 1 ? pick(1 + Math.floor(rand() * 40)) : undefined)
      const key = randomKey()
      const se = 1_500_000_000 + Math.floor(rand() * 1_000_000_000)
      const skn = kind === 2 ? 'iothubowner' : undefined
      const ours = buildSasToken({ resource, key, expiry: se, policyName: skn })
      assert.equal(ours, oracleToken(resource, key, se, skn), `case ${i}: ${resource}`)
      // And it verifies with its own key, at any moment before expiry.
      const r = verifySasToken(parseSasToken(ours), [key], { acceptedResources: [resource], now: se - 1 })
      assert.deepEqual(r, { ok: true, keyIndex: 0 }, `case ${i}`)
    }
  })

  test('durationSecs counts from now', () => {
    const t = buildSasToken({ resource: 'h.azure-devices.net/devices/d', key: KEY, durationSecs: 3600, now: 1000 })
    assert.equal(parseSasToken(t).se, 4600)
  })

  test('encodeUriComponentStrict escapes !\'()* like the Azure SDKs', () => {
    assert.equal(encodeUriComponentStrict("a!b'c(d)e*f/g"), 'a%21b%27c%28d%29e%2Af%2Fg')
  })
})

describe('verifySasToken', () => {
  const PRIMARY = KEY
  const SECONDARY = Buffer.alloc(32, 7).toString('base64')
  const OTHER = Buffer.alloc(32, 9).toString('base64')
  const res = 'myhub.azure-devices.net/devices/dev1'
  const mod = 'myhub.azure-devices.net/devices/dev1/modules/mod1'
  const keys = [PRIMARY, SECONDARY]
  const at = { acceptedResources: [res], now: SE - 60 }

  const fields = (token: string) => parseSasToken(token)
  const fail = (token: string, opts = at, k: string[] = keys) => {
    const r = verifySasToken(fields(token), k, opts)
    assert.equal(r.ok, false, `should refuse ${token}`)
    return r.ok ? undefined : r.failure
  }

  test('accepts primary and secondary keys, and says which signed', () => {
    assert.deepEqual(verifySasToken(fields(buildSasToken({ resource: res, key: PRIMARY, expiry: SE })), keys, at), { ok: true, keyIndex: 0 })
    assert.deepEqual(verifySasToken(fields(buildSasToken({ resource: res, key: SECONDARY, expiry: SE })), keys, at), { ok: true, keyIndex: 1 })
  })

  test('refuses expired tokens beyond the 5 minute skew, accepts within it', () => {
    assert.equal(CLOCK_SKEW_SECS, 300)
    const token = buildSasToken({ resource: res, key: PRIMARY, expiry: SE })
    assert.equal(verifySasToken(fields(token), keys, { ...at, now: SE + 299 }).ok, true)
    assert.equal(fail(token, { ...at, now: SE + 301 }), 'expired')
    assert.equal(fail(token, { ...at, now: SE + 86400 }), 'expired')
  })

  test('refuses a tampered sr, sig or se', () => {
    const token = buildSasToken({ resource: res, key: PRIMARY, expiry: SE })
    const f = fields(token)
    // sr: another device, but one the caller would accept: only the signature can catch it.
    const otherSr = token.replace('dev1', 'dev2')
    assert.equal(fail(otherSr, { ...at, acceptedResources: ['myhub.azure-devices.net/devices/dev2'] }), 'signature')
    // sig: flip one base64 character.
    const sig = f.sig
    const flipped = (sig[5] === 'A' ? 'B' : 'A')
    const badSig = token.replace(encodeURIComponent(sig), encodeURIComponent(sig.slice(0, 5) + flipped + sig.slice(6)))
    assert.notEqual(badSig, token)
    assert.equal(fail(badSig), 'signature')
    // se: extend the lifetime by a second.
    assert.equal(fail(token.replace(`se=${SE}`, `se=${SE + 1}`)), 'signature')
    // A truncated signature.
    assert.equal(fail(token.replace(encodeURIComponent(sig), encodeURIComponent(sig.slice(0, -4)))), 'signature')
  })

  test('refuses a wrong key and a token for another hub or device', () => {
    assert.equal(fail(buildSasToken({ resource: res, key: OTHER, expiry: SE })), 'signature')
    assert.equal(fail(buildSasToken({ resource: 'otherhub.azure-devices.net/devices/dev1', key: PRIMARY, expiry: SE })), 'resource')
    assert.equal(fail(buildSasToken({ resource: 'myhub.azure-devices.net/devices/dev2', key: PRIMARY, expiry: SE })), 'resource')
    // No keys at all (an X.509 device) never verifies.
    assert.equal(fail(buildSasToken({ resource: res, key: PRIMARY, expiry: SE }), at, []), 'signature')
  })

  test('garbage strings are refused with a SasFormatError, never a crash', () => {
    const garbage = [
      '',
      'hello',
      'SharedAccessSignature',
      'SharedAccessSignature ',
      'SharedAccessSignature sr=a&sig=b',
      'SharedAccessSignature sr=a&se=1',
      'SharedAccessSignature sig=a&se=1',
      'SharedAccessSignature sr=a&sig=b&se=notanumber',
      'SharedAccessSignature sr=a&sig=b&se=-5',
      'SharedAccessSignature sr=%E0%A4%A&sig=b&se=1',
      'SharedAccessSignature sr=a&sr=b&sig=c&se=1',
      'SharedAccessSignature =a&sig=b&se=1',
      'sharedaccesssignature sr=a&sig=b&se=1',
      'SharedAccessSignature ' + 'x'.repeat(5000),
      '\u0000\u0001\u0002',
    ]
    for (const g of garbage) assert.throws(() => parseSasToken(g), SasFormatError, JSON.stringify(g.slice(0, 50)))
    // Parses, but the signature is nonsense: refused, no throw.
    assert.equal(fail('SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1&sig=%%%&se=1700000000'.replace('%%%', 'AAAA')), 'signature')
  })

  test('accepts lowercase hex escapes in sr, whichever case the signer used', () => {
    const token = buildSasToken({ resource: res, key: PRIMARY, expiry: SE })
    const lower = token.replace(/%2F/g, '%2f')
    assert.notEqual(lower, token)
    assert.equal(verifySasToken(fields(lower), keys, at).ok, true)
    // A signer that signed the lowercase form itself (some SDKs do).
    const sr = encodeURIComponent(res).replace(/%2F/g, '%2f')
    const sig = CryptoJS.HmacSHA256(`${sr}\n${SE}`, CryptoJS.enc.Base64.parse(PRIMARY)).toString(CryptoJS.enc.Base64)
    const signedLower = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${SE}`
    assert.equal(verifySasToken(fields(signedLower), keys, at).ok, true)
  })

  test('fields may come in any order, with skn', () => {
    const token = buildSasToken({ resource: 'myhub.azure-devices.net', key: PRIMARY, expiry: SE, policyName: 'iothubowner' })
    const f = fields(token)
    assert.equal(f.skn, 'iothubowner')
    const parts = token.slice('SharedAccessSignature '.length).split('&').reverse().join('&')
    const r = verifySasToken(fields(`SharedAccessSignature ${parts}`), [PRIMARY], { acceptedResources: ['myhub.azure-devices.net'], now: SE })
    assert.equal(r.ok, true)
  })

  test('a device-scoped token is accepted for a module only when the caller lists the device resource', () => {
    const deviceToken = buildSasToken({ resource: res, key: PRIMARY, expiry: SE })
    // The caller (broker) authenticating module dev1/mod1 accepts the module resource and its device's.
    assert.equal(verifySasToken(fields(deviceToken), keys, { ...at, acceptedResources: [mod, res] }).ok, true)
    assert.equal(fail(deviceToken, { ...at, acceptedResources: [mod] }), 'resource')
    // The reverse is never true: a module token does not open the device.
    const moduleToken = buildSasToken({ resource: mod, key: PRIMARY, expiry: SE })
    assert.equal(fail(moduleToken, { ...at, acceptedResources: [res] }), 'resource')
  })

  test('signatures are compared in constant time (timingSafeEqual, not ===)', () => {
    // Timing cannot be measured reliably in a unit test; check the implementation's choice instead.
    const src = readFileSync(join(REPO_ROOT, 'src', 'sas', 'token.ts'), 'utf8')
    assert.match(src, /timingSafeEqual\(/)
  })
})

describe('describeSasToken (sas decode)', () => {
  test('an expired token says how long ago', () => {
    const token = buildSasToken({ resource: 'myhub.azure-devices.net/devices/dev1', key: KEY, expiry: SE })
    const d = describeSasToken(token, undefined, SE + 12 * 60)
    assert.equal(d.expired, true)
    assert.equal(d.expiryText, 'expired 12 min ago')
    assert.equal(d.signature, 'not checked')
    assert.equal(d.expiresAt, new Date(SE * 1000).toISOString())
  })

  test('checks the signature with keys even when expired', () => {
    const token = buildSasToken({ resource: 'myhub.azure-devices.net/devices/dev1', key: KEY, expiry: SE })
    const ok = describeSasToken(token, { primary: Buffer.alloc(32).toString('base64'), secondary: KEY }, SE + 7200)
    assert.equal(ok.signature, 'valid')
    assert.equal(ok.signedWith, 'secondary')
    const bad = describeSasToken(token, { primary: Buffer.alloc(32).toString('base64') }, SE - 10)
    assert.equal(bad.signature, 'invalid')
    assert.equal(bad.expiryText, 'expires in 10 s')
  })

  test('humanDuration', () => {
    assert.equal(humanDuration(5), '5 s')
    assert.equal(humanDuration(125), '2 min')
    assert.equal(humanDuration(5400), '1.5 h')
    assert.equal(humanDuration(3 * 86400), '3.0 days')
  })
})

test('generate-sas-token --connection-string: hub, device and module strings sign their own resource with their key (az)', () => {
  const key = Buffer.alloc(32, 7).toString('base64')
  const cases: [string, string, string | undefined][] = [
    [`HostName=edgemq.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`, 'edgemq.azure-devices.net', 'iothubowner'],
    [`HostName=edgemq.azure-devices.net;DeviceId=d1;SharedAccessKey=${key}`, 'edgemq.azure-devices.net/devices/d1', undefined],
    [`HostName=edgemq.azure-devices.net;DeviceId=d1;ModuleId=m1;SharedAccessKey=${key};GatewayHostName=localhost`, 'edgemq.azure-devices.net/devices/d1/modules/m1', undefined],
  ]
  for (const [cs, resource, skn] of cases) {
    const fields = parseSasToken(sasFromConnectionString(cs, { durationSecs: 600 }))
    assert.equal(fields.resource, resource)
    assert.equal(fields.skn, skn)
    assert.ok(verifySasToken(fields, [key], { acceptedResources: [resource] }).ok, cs)
    assert.ok(!verifySasToken(fields, [Buffer.alloc(32, 8).toString('base64')], { acceptedResources: [resource] }).ok, 'signed with the string\'s key')
  }
  assert.throws(() => sasFromConnectionString('HostName=h;DeviceId=d1'), /with a SharedAccessKey/)
  assert.throws(() => sasFromConnectionString(`HostName=h;ModuleId=m;SharedAccessKey=${key}`), /ModuleId but no DeviceId/)
})
