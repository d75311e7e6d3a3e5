/**
 * Service SAS verification (PROTOCOL.md §8), shared by every service-side endpoint: the REST and
 * control APIs (Authorization header) and AMQP's CBS `put-token`. The token's `skn` names one of the
 * hub's shared access policies; its key must have signed it and its `sr` must be one of the host
 * names the caller was reached by. The answer is the policy's rights, for the caller to check.
 */
import { UnauthorizedError } from '../errors.js'
import type { ServicePolicy } from '../registry/types.js'
import { parseSasToken, verifySasToken } from '../sas/index.js'

export interface ServiceGrant {
  policy: string
  rights: readonly string[]
  /** Unix seconds (the token's `se`). */
  expiresAt: number
}

/** Verifies `token`; throws UnauthorizedError saying why it is refused. */
export function verifyServiceToken(policies: readonly ServicePolicy[], token: string, acceptedResources: string[], opts: { skewSecs?: number } = {}): ServiceGrant {
  let fields
  try {
    fields = parseSasToken(token)
  } catch (err) {
    throw new UnauthorizedError((err as Error).message)
  }
  const policy = policies.find((p) => p.name === fields.skn)
  if (!policy) throw new UnauthorizedError(fields.skn ? `unknown shared access policy "${fields.skn}"` : 'the SAS token names no shared access policy (skn): a service token is needed')
  const r = verifySasToken(fields, [policy.primaryKey, policy.secondaryKey], { acceptedResources, ...(opts.skewSecs !== undefined ? { skewSecs: opts.skewSecs } : {}) })
  if (!r.ok) throw new UnauthorizedError(r.reason)
  return { policy: policy.name, rights: policy.rights, expiresAt: fields.se }
}

/**
 * A CBS token for an AMQP audience: its `sr` may carry a scheme, a port and a path
 * (`sb://<host>[:port]/<entity>`, as Event Hubs clients sign, or `<host>/…`); what must match is the
 * host, one of `hosts` (the hub's host name, or the one the peer opened the connection to).
 */
export function verifyAmqpToken(policies: readonly ServicePolicy[], token: string, hosts: string[], skewSecs?: number): ServiceGrant {
  let resource = ''
  try {
    resource = parseSasToken(token).resource.toLowerCase().replace(/\/+$/, '')
  } catch {
    /* verifyServiceToken says what is wrong with it */
  }
  // The host may carry the port the client dialled (`sb://localhost:5672/…`, emulator connection strings).
  const host = resource.replace(/^[a-z][a-z0-9+.-]*:\/\//, '').split('/')[0].replace(/:\d+$/, '')
  const known = hosts.filter(Boolean).map((h) => h.toLowerCase())
  const accepted = known.includes(host) ? [resource] : known
  try {
    return verifyServiceToken(policies, token, accepted, { skewSecs })
  } catch (err) {
    if (!(err instanceof UnauthorizedError) || !/signature/.test(err.message)) throw err
    // Event Hubs / Service Bus clients sign with the key's text as the HMAC key, where IoT Hub's SDKs
    // base64-decode it first: the same policy key, taken that way.
    const asText = policies.map((p) => ({ ...p, primaryKey: utf8Key(p.primaryKey), secondaryKey: utf8Key(p.secondaryKey) }))
    return verifyServiceToken(asText, token, accepted, { skewSecs })
  }
}

/** The base64 form of a key whose text itself is the HMAC key. */
function utf8Key(key: string): string {
  return key === '' ? '' : Buffer.from(key, 'utf8').toString('base64')
}
