/**
 * Symmetric key attestation (DPS "How to use symmetric keys"): a device of an enrollment group
 * holds `base64(HMAC-SHA256(key = base64-decoded group key, message = registration id))`, and
 * signs a SAS token for `<idScope>/registrations/<registrationId>` with `skn=registration`.
 */
import { createHmac } from 'node:crypto'

import { UsageError } from '../errors.js'
import { validateKey } from '../registry/validate.js'

export function deriveDeviceKey(groupKey: string, registrationId: string): string {
  validateKey(groupKey, 'enrollment group')
  if (!registrationId) throw new UsageError('a registration id is needed to derive a device key')
  return createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId, 'utf8').digest('base64')
}

/** The resource a registration SAS token is scoped to. */
export function registrationResource(idScope: string, registrationId: string): string {
  return `${idScope}/registrations/${registrationId}`
}
