/**
 * IoT Hub shared access signatures (PROTOCOL.md §2). Pure: no I/O, clock passed in.
 *
 *   SharedAccessSignature sr=<URL-encoded resource>&sig=<URL-encoded base64 HMAC>&se=<unix s>[&skn=<policy>]
 *
 * String to sign = `<URL-encoded resource>\n<se>`, HMAC-SHA256 keyed with the base64-DECODED key.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'

import { EdgeMqError } from '../errors.js'

/** Accepted clock skew between the token's signer and us (PROTOCOL.md §2). */
export const CLOCK_SKEW_SECS = 300

/** encodeURIComponent plus `!'()*`, exactly as the Azure SDKs encode `sr` and `sig`. */
export function encodeUriComponentStrict(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
}

export interface SasFields {
  /** The `sr` value exactly as sent (still URL-encoded). */
  sr: string
  /** `sr` decoded: `<hub>.azure-devices.net/devices/<d>[/modules/<m>]` or the bare host. */
  resource: string
  /** Signature, base64 (URL-decoded). */
  sig: string
  /** Expiry, unix seconds. */
  se: number
  /** Policy (key) name, for service tokens. */
  skn?: string
}

export class SasFormatError extends EdgeMqError {
  constructor(message: string) {
    super(message, { exitCode: 1, code: 'SAS_MALFORMED', hint: 'a SAS token looks like "SharedAccessSignature sr=…&sig=…&se=…"' })
  }
}

export function nowSecs(): number {
  return Math.floor(Date.now() / 1000)
}

/** Decoded keys by their base64 text: a broker verifies the same few keys on every CONNECT. */
const keyObjects = new Map<string, KeyObject | Buffer>()
const MAX_KEYS = 10_000

function keyObject(keyBase64: string): KeyObject | Buffer {
  let k = keyObjects.get(keyBase64)
  if (k === undefined) {
    if (keyObjects.size >= MAX_KEYS) keyObjects.clear()
    const raw = Buffer.from(keyBase64, 'base64')
    // An empty key cannot make a KeyObject; HMAC over an empty key is still defined.
    k = raw.length > 0 ? createSecretKey(raw) : raw
    keyObjects.set(keyBase64, k)
  }
  return k
}

export function sign(stringToSign: string, keyBase64: string): string {
  return createHmac('sha256', keyObject(keyBase64)).update(stringToSign, 'utf8').digest('base64')
}

/**
 * Signatures already computed, by key and string to sign: a device that reconnects with the
 * token it holds (the SDKs reuse one for its whole lifetime) costs no HMAC. Memoizing a pure
 * function: the same key and string always give the same signature, and a rotated key is a
 * different key, so nothing here can outlive a key change.
 */
const signatures = new Map<string, string>()
const MAX_SIGNATURES = 10_000

function signMemo(stringToSign: string, keyBase64: string): string {
  const k = `${keyBase64}\n${stringToSign}`
  let sig = signatures.get(k)
  if (sig === undefined) {
    if (signatures.size >= MAX_SIGNATURES) signatures.clear()
    sig = sign(stringToSign, keyBase64)
    signatures.set(k, sig)
  }
  return sig
}

export interface BuildSasOptions {
  /** Decoded resource URI, e.g. `myhub.azure-devices.net/devices/dev1`. */
  resource: string
  /** Base64 key. */
  key: string
  /** Absolute expiry, unix seconds. Give this or `durationSecs`. */
  expiry?: number
  /** Lifetime from `now`, seconds (az's `--du`, default 3600). */
  durationSecs?: number
  /** Policy name (`skn`), for service tokens. */
  policyName?: string
  now?: number
}

export function buildSasToken(opts: BuildSasOptions): string {
  const se = opts.expiry ?? (opts.now ?? nowSecs()) + (opts.durationSecs ?? 3600)
  const sr = encodeUriComponentStrict(opts.resource)
  const sig = sign(`${sr}\n${se}`, opts.key)
  let token = `SharedAccessSignature sr=${sr}&sig=${encodeUriComponentStrict(sig)}&se=${se}`
  if (opts.policyName) token += `&skn=${encodeUriComponentStrict(opts.policyName)}`
  return token
}

function safeDecode(s: string, field: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new SasFormatError(`SAS token field "${field}" is not valid URL encoding`)
  }
}

/** Parses a token; throws SasFormatError with what is wrong. Field order is free, as in IoT Hub. */
/** Tokens already parsed (a pure function of the string; the fields are frozen and shared). */
const parsedTokens = new Map<string, Readonly<SasFields>>()
const MAX_PARSED = 10_000
/** Longer tokens are parsed but not kept: anyone may send one, and the memo must stay small (~5 MB). */
const MAX_PARSED_LENGTH = 512

export function parseSasToken(token: string): SasFields {
  let fields = parsedTokens.get(token)
  if (fields === undefined) {
    fields = Object.freeze(parseSasTokenText(token))
    if (token.length > MAX_PARSED_LENGTH) return fields
    if (parsedTokens.size >= MAX_PARSED) parsedTokens.clear()
    parsedTokens.set(token, fields)
  }
  return fields
}

function parseSasTokenText(token: string): SasFields {
  if (typeof token !== 'string' || token.length === 0) throw new SasFormatError('SAS token is empty')
  if (token.length > 4096) throw new SasFormatError('SAS token is longer than 4096 characters')
  const prefix = 'SharedAccessSignature '
  if (!token.startsWith(prefix)) throw new SasFormatError('SAS token does not start with "SharedAccessSignature "')
  const fields = new Map<string, string>()
  for (const part of token.slice(prefix.length).trim().split('&')) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw new SasFormatError(`SAS token part "${part.slice(0, 40)}" is not key=value`)
    const k = part.slice(0, eq)
    if (fields.has(k)) throw new SasFormatError(`SAS token has "${k}" twice`)
    fields.set(k, part.slice(eq + 1))
  }
  const sr = fields.get('sr')
  const sig = fields.get('sig')
  const se = fields.get('se')
  if (!sr) throw new SasFormatError('SAS token has no "sr" (resource)')
  if (!sig) throw new SasFormatError('SAS token has no "sig" (signature)')
  if (!se) throw new SasFormatError('SAS token has no "se" (expiry)')
  if (!/^\d{1,12}$/.test(se)) throw new SasFormatError(`SAS token expiry "se=${se.slice(0, 20)}" is not unix seconds`)
  const skn = fields.get('skn')
  return {
    sr,
    resource: safeDecode(sr, 'sr'),
    sig: safeDecode(sig, 'sig'),
    se: Number(se),
    ...(skn ? { skn: safeDecode(skn, 'skn') } : {}),
  }
}

export type SasVerifyFailure = 'expired' | 'signature' | 'resource' | 'not-yet-valid'

export type SasVerifyResult =
  | { ok: true; keyIndex: number }
  | { ok: false; failure: SasVerifyFailure; reason: string }

function constantTimeEqualStr(expected: string, given: string): boolean {
  // Compare the base64 text itself: rejects non-canonical encodings, and the length of an
  // HMAC-SHA256 signature is public, so the early length check leaks nothing.
  const a = Buffer.from(expected, 'utf8')
  const b = Buffer.from(given, 'utf8')
  return a.length === b.length && timingSafeEqual(a, b)
}

/** `%2f` and `%2F` are the same escape; a signer may have used either (PROTOCOL.md §2). */
function srVariants(sr: string): string[] {
  const upper = sr.replace(/%[0-9a-f]{2}/gi, (m) => m.toUpperCase())
  const lower = sr.replace(/%[0-9a-f]{2}/gi, (m) => m.toLowerCase())
  return [...new Set([sr, upper, lower])]
}

export function humanDuration(secs: number): string {
  const s = Math.abs(Math.round(secs))
  if (s < 60) return `${s} s`
  // Floor, so 3599 s reads "59 min" and never "60 min" next to 3600 s = "1.0 h".
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86400) return `${(s / 3600).toFixed(s < 36000 ? 1 : 0)} h`
  return `${(s / 86400).toFixed(1)} days`
}

export interface VerifyOptions {
  /** Resources the token may be scoped to (decoded, compared case-insensitively). */
  acceptedResources: string[]
  now?: number
  skewSecs?: number
}

/**
 * Verifies signature, expiry and scope. `keys` are base64 (primary, secondary); either may have
 * signed. Every key is tried with a constant-time compare so timing does not reveal which failed.
 */
export function verifySasToken(fields: SasFields, keys: readonly string[], opts: VerifyOptions): SasVerifyResult {
  const now = opts.now ?? nowSecs()
  const skew = opts.skewSecs ?? CLOCK_SKEW_SECS
  const res = fields.resource.toLowerCase().replace(/\/+$/, '')
  if (!opts.acceptedResources.some((r) => r.toLowerCase() === res)) {
    return { ok: false, failure: 'resource', reason: `token is for "${fields.resource}", expected "${opts.acceptedResources[0]}"` }
  }
  // The sr as sent first, each key in order; the other escapings only when that fails. Which key
  // or escaping matched is no secret, so stopping at the first match leaks nothing.
  const matches = (sr: string) => keys.findIndex((key) => key !== '' && constantTimeEqualStr(signMemo(`${sr}\n${fields.se}`, key), fields.sig))
  let keyIndex = matches(fields.sr)
  for (const sr of keyIndex < 0 ? srVariants(fields.sr) : []) {
    if (sr === fields.sr) continue
    keyIndex = matches(sr)
    if (keyIndex >= 0) break
  }
  if (keyIndex < 0) return { ok: false, failure: 'signature', reason: 'signature does not match primary or secondary key' }
  if (fields.se + skew < now) {
    return { ok: false, failure: 'expired', reason: `SAS token expired ${humanDuration(now - fields.se)} ago` }
  }
  return { ok: true, keyIndex }
}
