/** Identity and key validation exactly as IoT Hub enforces it. */
import { UsageError } from '../errors.js'

/** IoT Hub: ≤128 chars of ASCII letters, digits and `-.+%_#*?!(),:=@$'`. */
const ID_RE = /^[A-Za-z0-9\-.+%_#*?!(),:=@$']{1,128}$/

export function validateDeviceId(id: string, what = 'device id'): void {
  if (!ID_RE.test(id)) {
    throw new UsageError(
      `invalid ${what} "${id.length > 60 ? id.slice(0, 60) + '…' : id}"`,
      "ids are 1–128 characters of A-Z a-z 0-9 and -.+%_#*?!(),:=@$'",
    )
  }
}

export function validateModuleId(id: string): void {
  validateDeviceId(id, 'module id')
}

/** Keys must be base64 of 16–64 bytes (IoT Hub's rule). */
export function validateKey(key: string, which: string): void {
  const canonical = /^[A-Za-z0-9+/]+={0,2}$/.test(key) && key.length % 4 === 0
  const len = canonical ? Buffer.from(key, 'base64').length : 0
  if (!canonical || len < 16 || len > 64) {
    throw new UsageError(`the ${which} key is not valid base64 of 16–64 bytes`, 'omit it to have one generated, or pass e.g. $(openssl rand -base64 32)')
  }
}

/** SHA-1 (40 hex) or SHA-256 (64 hex) thumbprint; colons and case are ignored. */
export function normalizeThumbprintInput(tp: string, which: string): string {
  const t = tp.replace(/[:\s]/g, '').toUpperCase()
  if (!/^([0-9A-F]{40}|[0-9A-F]{64})$/.test(t)) {
    throw new UsageError(`the ${which} thumbprint is not a SHA-1 or SHA-256 hex digest`, 'get it with `edgemq cert device --device <id> --self-signed`')
  }
  return t
}
