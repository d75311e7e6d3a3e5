import { UsageError } from '../errors.js'
import type { AuthType } from '../registry/types.js'

/** Both vocabularies: edgemq's and az's `--am`. */
const NAMES: Record<string, AuthType> = {
  sas: 'sas',
  shared_private_key: 'sas',
  'x509-thumbprint': 'selfSigned',
  x509_thumbprint: 'selfSigned',
  self_signed: 'selfSigned',
  selfsigned: 'selfSigned',
  'x509-ca': 'certificateAuthority',
  x509_ca: 'certificateAuthority',
  certificateauthority: 'certificateAuthority',
}

export function parseAuthType(s: string | undefined): AuthType | undefined {
  if (s === undefined) return undefined
  const t = NAMES[s.toLowerCase()]
  if (!t) throw new UsageError(`unknown auth type "${s}"`, 'use sas, x509-thumbprint or x509-ca (az: shared_private_key, x509_thumbprint, x509_ca)')
  return t
}
