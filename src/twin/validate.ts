/**
 * Twin document rules, as IoT Hub enforces them ("Understand and use device twins in IoT Hub",
 * section "Tags and properties format" and "Device twin size"; PROTOCOL.md §4 "Limits"):
 * - keys: UTF-8, case-sensitive, up to 1 KB; no UNICODE control characters (C0, C1), `.`, `$` or SP;
 * - integers from -4503599627370496 to 4503599627370495;
 * - nesting: at most 10 levels of objects below the section (tags / desired / reported) root;
 * - size: desired ≤ 32 KB, reported ≤ 32 KB, tags ≤ 8 KB (JSON, read-only `$version`/`$metadata` excluded).
 * Arrays are accepted (IoT Hub supports them today, and the `$edgeHub` policy document needs them);
 * array levels count toward the depth limit, so nesting can never run away.
 * Every violation is a 400 (TwinValidationError), never a crash.
 */
import { InvalidDocumentError, PreconditionFailedError, type DocumentIssue } from '../errors.js'
import type { TwinObject, TwinSection, TwinValue } from './types.js'

export const TWIN_LIMITS = {
  desiredBytes: 32 * 1024,
  reportedBytes: 32 * 1024,
  tagsBytes: 8 * 1024,
  maxDepth: 10,
  maxKeyBytes: 1024,
  maxInteger: 4503599627370495,
  minInteger: -4503599627370496,
} as const

/** A twin document or patch IoT Hub would refuse with 400 Bad Request. */
export class TwinValidationError extends InvalidDocumentError {
  readonly status = 400 as const
  constructor(message: string, issues: DocumentIssue[] = [{ path: '', message }]) {
    super(message, issues)
  }
}

/** An `If-Match` / `--etag` that does not match the twin: 412 Precondition Failed. */
export class TwinPreconditionError extends PreconditionFailedError {
  readonly status = 412 as const
  constructor(message: string) {
    super(message, 'run `edgemq twin show` for the current etag, or omit --etag')
  }
}

export function sectionLimit(section: TwinSection): number {
  return section === 'tags' ? TWIN_LIMITS.tagsBytes : section === 'desired' ? TWIN_LIMITS.desiredBytes : TWIN_LIMITS.reportedBytes
}

/** UTF-8 length of the JSON text: how IoT Hub sizes a twin section. */
export function jsonSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8')
}

/** Parse a JSON twin patch (MQTT payload, `--desired` flag, REST body). Malformed → 400. */
export function parseTwinJson(input: string | Uint8Array, what = 'twin patch'): TwinObject {
  const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    throw new TwinValidationError(`${what} is not valid JSON: ${why}`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TwinValidationError(`${what} must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`)
  }
  return value as TwinObject
}

// C0 (U+0000–U+001F) and C1 (U+0080–U+009F) control characters, `.`, `$` and space.
// eslint-disable-next-line no-control-regex
const BAD_KEY_CHAR = /[\u0000-\u001f\u0080-\u009f.$ ]/

/** Why a key is not allowed, or null when it is fine. */
export function keyProblem(key: string): string | null {
  const bad = BAD_KEY_CHAR.exec(key)
  if (bad !== null) {
    const ch = bad[0]
    const shown = ch === ' ' ? 'a space' : ch === '.' || ch === '$' ? `'${ch}'` : `control character U+${ch.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`
    return `property name "${key}" contains ${shown}; names may not contain '.', '$', spaces or control characters`
  }
  if (Buffer.byteLength(key, 'utf8') > TWIN_LIMITS.maxKeyBytes) {
    return `property name "${key.slice(0, 32)}…" is longer than ${TWIN_LIMITS.maxKeyBytes} bytes`
  }
  return null
}

/** Read-only members a client may echo back from `twin show`; dropped from patches at the root. */
const READ_ONLY_ROOT = new Set(['$version', '$metadata'])

/**
 * Check a patch (or full section) for `section` and return it without root-level read-only
 * members. Throws TwinValidationError (400) listing every problem (up to 20), each with its path.
 */
export function validateTwinPatch(patch: unknown, section: TwinSection): TwinObject {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new TwinValidationError(`${section} patch must be a JSON object`)
  }
  const cleaned: TwinObject = {}
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (READ_ONLY_ROOT.has(k)) continue
    Object.defineProperty(cleaned, k, { value: v as TwinValue, enumerable: true, writable: true, configurable: true })
  }

  const issues: DocumentIssue[] = []
  const add = (path: string, message: string): void => {
    if (issues.length < 20) issues.push({ path, message })
  }
  const walk = (value: unknown, path: string, depth: number): void => {
    if (value === null || typeof value === 'string' || typeof value === 'boolean') return
    if (typeof value === 'number') {
      // Integers only: a number JavaScript prints in exponent form (1.5e+300) was a float in JSON.
      const integral = Number.isInteger(value) && !/e/i.test(String(value))
      if (integral && (value > TWIN_LIMITS.maxInteger || value < TWIN_LIMITS.minInteger)) {
        add(path, `integer ${value} is outside IoT Hub's range ${TWIN_LIMITS.minInteger}..${TWIN_LIMITS.maxInteger}`)
      }
      return
    }
    if (typeof value !== 'object') {
      add(path, `unsupported value type ${typeof value}`)
      return
    }
    // `depth` = levels of objects/arrays below the section root; the root's children are level 1.
    if (depth > TWIN_LIMITS.maxDepth) {
      add(path, `nested ${depth} levels deep; IoT Hub allows at most ${TWIN_LIMITS.maxDepth}`)
      return
    }
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1))
      return
    }
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const p = path === '' ? k : `${path}.${k}`
      const problem = keyProblem(k)
      if (problem !== null) add(p, problem)
      walk(v, p, depth + 1)
    }
  }
  for (const [k, v] of Object.entries(cleaned)) {
    const problem = keyProblem(k)
    if (problem !== null) add(k, problem)
    walk(v, k, 1)
  }
  if (issues.length > 0) {
    const first = issues[0] as DocumentIssue
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
    throw new TwinValidationError(`invalid ${section} patch: ${first.path}: ${first.message}${more}`, issues)
  }
  // Sized only after the (depth-bounded) walk: JSON.stringify recurses and would overflow the
  // stack on a hostile 100k-deep payload instead of answering 400.
  const size = jsonSize(cleaned)
  const limit = sectionLimit(section)
  if (size > limit) {
    throw new TwinValidationError(`${section} patch is ${size} bytes; IoT Hub allows ${limit} bytes (${limit / 1024} KB) of ${section} properties`)
  }
  return cleaned
}
