/**
 * Service connection strings given to az's `--login` (`HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`):
 * their fields, and whether the key is a policy's.
 */
import { UnauthorizedError, UsageError } from '../errors.js'

/** `k=v;k=v` → lower-cased keys (IoT Hub and DPS connection strings are case-insensitive in their keys). */
export function connectionStringFields(cs: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of cs.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim())
  }
  return out
}

/** The connection string's SharedAccessKeyName is one of `policies` and its SharedAccessKey that policy's key. */
export function checkPolicyKey(f: Map<string, string>, policies: readonly { name: string; primaryKey: string; secondaryKey: string }[], owner: string, hint: string): void {
  const policyName = f.get('sharedaccesskeyname')
  const policy = policies.find((p) => p.name === policyName)
  if (!policy) throw new UsageError(`--login: ${owner} has no shared access policy "${policyName ?? ''}"`, `policies: ${policies.map((p) => p.name).join(', ')}`)
  const key = f.get('sharedaccesskey')
  if (key !== policy.primaryKey && key !== policy.secondaryKey) throw new UnauthorizedError(`--login: the key is not a key of policy "${policy.name}"`, hint)
}
