/**
 * Service connection strings given to az's `--login` (`HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`):
 * their fields, and whether the key is a policy's.
 */
import { UnauthorizedError, UsageError } from '../errors.js'
import { buildSasToken } from './token.js'

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

/**
 * az `generate-sas-token --connection-string`: a token signed with the string's key for its resource,
 * without the registry: a hub string (policy) signs `<HostName>`, a device's `<HostName>/devices/<id>`,
 * a module's `<HostName>/devices/<id>/modules/<m>`.
 */
export function sasFromConnectionString(cs: string, opts: { durationSecs?: number; expiry?: number } = {}): string {
  const f = connectionStringFields(cs)
  const host = f.get('hostname')
  const key = f.get('sharedaccesskey')
  if (!host || !key) throw new UsageError('--connection-string is not an IoT Hub, device or module connection string with a SharedAccessKey')
  const device = f.get('deviceid')
  const module = f.get('moduleid')
  if (module && !device) throw new UsageError('--connection-string has a ModuleId but no DeviceId')
  const resource = device ? `${host}/devices/${device}${module ? `/modules/${module}` : ''}` : host
  return buildSasToken({ resource, key, durationSecs: opts.durationSecs, expiry: opts.expiry, policyName: device ? undefined : f.get('sharedaccesskeyname') })
}
