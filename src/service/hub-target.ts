/**
 * az's hub identifier flags on a local hub: `-n/--hub-name` must name it, and `-l/--login` (an IoT
 * Hub connection string, az's alternative to `az login`) must be its own: its HostName, one of its
 * shared access policies and that policy's key. `-g/--resource-group` and `--auth-type` are accepted
 * and ignored (there is no Azure resource to look up).
 */
import { EdgeMqError, UsageError } from '../errors.js'
import type { HubRecord } from '../registry/types.js'
import { checkPolicyKey, connectionStringFields } from '../sas/index.js'

export function checkHubTarget(hub: Pick<HubRecord, 'name' | 'hostName' | 'policies'>, target: { name?: string; login?: string }): void {
  const { name, login } = target
  if (name && name !== hub.name && name !== hub.hostName) {
    throw new EdgeMqError(`hub "${name}" is not the local hub; this home holds hub "${hub.name}"`, { hint: `pass -n ${hub.name}, or use --home for another hub` })
  }
  if (login === undefined) return
  const hint = 'pass the hub connection string `edgemq connection-string show` prints (policy iothubowner by default)'
  const f = connectionStringFields(login)
  const host = f.get('hostname')
  if (!host) throw new UsageError('--login is not an IoT Hub connection string (no HostName=…)', hint)
  if (f.has('deviceid')) throw new UsageError("--login takes the hub's connection string (a shared access policy), not a device's", hint)
  if (host !== hub.hostName && host !== hub.name && host !== 'localhost') {
    throw new EdgeMqError(`--login names hub "${host}"; this home holds hub "${hub.name}" (${hub.hostName})`, { hint })
  }
  checkPolicyKey(f, hub.policies, 'this hub', hint)
}
