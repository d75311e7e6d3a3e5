/** The parent (`$upstream`) as named by `hub set-upstream --connection-string …`. */
import { UsageError } from '../errors.js'
import type { UpstreamSettings } from '../registry/types.js'

/** `HostName=…;DeviceId=<child-edge>;SharedAccessKey=…;GatewayHostName=<host>` → settings. */
export function parseUpstreamConnectionString(cs: string, opts: { port?: number; caFile?: string } = {}): UpstreamSettings {
  const fields = new Map<string, string>()
  for (const part of cs.split(';')) {
    if (!part.trim()) continue
    const eq = part.indexOf('=')
    if (eq <= 0) throw new UsageError(`connection string part "${part}" is not Key=Value`)
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim())
  }
  const need = (k: string, name: string): string => {
    const v = fields.get(k)
    if (!v) throw new UsageError(`the connection string has no ${name}`, 'expected HostName=…;DeviceId=<edge device>;SharedAccessKey=…;GatewayHostName=<parent host>')
    return v
  }
  if (fields.has('moduleid')) throw new UsageError('the upstream connection string must be a device\'s (the child edge device), not a module\'s')
  const hostName = need('hostname', 'HostName')
  const port = opts.port ?? 8883
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`invalid port ${port}`)
  return {
    hostName,
    gatewayHostName: fields.get('gatewayhostname') ?? hostName,
    deviceId: need('deviceid', 'DeviceId'),
    sharedAccessKey: need('sharedaccesskey', 'SharedAccessKey'),
    port,
    ...(opts.caFile ? { caFile: opts.caFile } : {}),
  }
}
