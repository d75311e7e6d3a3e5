/**
 * Parsing the CONNECT fields IoT Hub defines (PROTOCOL.md §1):
 *   client id  `<deviceId>` | `<deviceId>/<moduleId>`
 *   username   `<hub>.azure-devices.net/<deviceId>[/<moduleId>]/?api-version=<any>[&…]`
 */
export interface ClientIdentity {
  clientId: string
  deviceId: string
  moduleId?: string
}

export function parseClientId(clientId: string): ClientIdentity | undefined {
  if (!clientId) return undefined
  const parts = clientId.split('/')
  if (parts.length > 2 || parts.some((p) => p.length === 0)) return undefined
  return parts.length === 2 ? { clientId, deviceId: parts[0], moduleId: parts[1] } : { clientId, deviceId: parts[0] }
}

export interface ParsedUsername {
  host: string
  /** `<deviceId>` or `<deviceId>/<moduleId>`. */
  identity: string
  query: string
}

export function parseUsername(username: string): ParsedUsername | undefined {
  // The query is optional in practice (some clients omit it); the identity ends at "/?" or the end.
  const q = username.indexOf('/?')
  const path = q >= 0 ? username.slice(0, q) : username.replace(/\/+$/, '')
  const query = q >= 0 ? username.slice(q + 2) : ''
  const slash = path.indexOf('/')
  if (slash <= 0) return undefined
  const identity = path.slice(slash + 1)
  if (!identity) return undefined
  return { host: path.slice(0, slash), identity, query }
}

/** The DTDL model id an IoT Plug and Play device announces in its username (`…/?api-version=…&model-id=dtmi:…`). */
export function modelIdOf(username: string | undefined): string | undefined {
  const query = username === undefined ? undefined : parseUsername(username)?.query
  return (query && new URLSearchParams(query).get('model-id')) || undefined
}
