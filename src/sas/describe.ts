/** `sas decode`: what a token says, in human terms, and whether it verifies. */
import { humanDuration, nowSecs, parseSasToken, verifySasToken } from './token.js'

export interface SasDescription {
  resource: string
  policy: string | null
  expiry: number
  expiresAt: string
  expired: boolean
  /** "expires in 59 min" / "expired 12 min ago". */
  expiryText: string
  signature: 'valid' | 'invalid' | 'not checked'
  /** Which key signed it, when checked and valid. */
  signedWith?: 'primary' | 'secondary'
  reason?: string
}

export function describeSasToken(token: string, keys?: { primary?: string; secondary?: string }, now = nowSecs()): SasDescription {
  const f = parseSasToken(token)
  const expired = f.se < now
  const out: SasDescription = {
    resource: f.resource,
    policy: f.skn ?? null,
    expiry: f.se,
    expiresAt: new Date(f.se * 1000).toISOString(),
    expired,
    expiryText: expired ? `expired ${humanDuration(now - f.se)} ago` : `expires in ${humanDuration(f.se - now)}`,
    signature: 'not checked',
  }
  if (keys) {
    const list = [keys.primary ?? '', keys.secondary ?? '']
    // Check the signature alone here: expiry is reported separately above.
    const r = verifySasToken(f, list, { acceptedResources: [f.resource.replace(/\/+$/, '')], now: Math.min(now, f.se) })
    if (r.ok) {
      out.signature = 'valid'
      out.signedWith = r.keyIndex === 0 ? 'primary' : 'secondary'
    } else {
      out.signature = 'invalid'
      out.reason = r.reason
    }
  }
  return out
}
