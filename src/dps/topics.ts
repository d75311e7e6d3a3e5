/**
 * The DPS MQTT protocol (learn.microsoft.com "Communicate with DPS using MQTT"), pure:
 *   CONNECT   client id `<registrationId>`, username `<idScope>/registrations/<registrationId>/api-version=<v>[&…]`
 *   request   `$dps/registrations/PUT/iotdps-register/?$rid=<rid>`  body `{registrationId, payload?}`
 *   poll      `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=<rid>&operationId=<id>`
 *   response  `$dps/registrations/res/<status>/?$rid=<rid>[&retry-after=<s>]`  (subscribe `$dps/registrations/res/#`)
 */
export const DPS_PREFIX = '$dps/'
export const DPS_RESPONSE_FILTER = '$dps/registrations/res/#'

export interface DpsUsername {
  idScope: string
  registrationId: string
  apiVersion?: string
}

/** Undefined when the username is not a DPS one (then it is an IoT Hub username, or invalid). */
export function parseDpsUsername(username: string): DpsUsername | undefined {
  const m = /^([^/]+)\/registrations\/([^/]+)\/(api-version=[^/]*)$/.exec(username)
  if (!m) return undefined
  const apiVersion = new URLSearchParams(m[3]).get('api-version') ?? undefined
  return { idScope: m[1], registrationId: m[2], ...(apiVersion ? { apiVersion } : {}) }
}

export type DpsRequest =
  | { kind: 'dps-register'; rid: string }
  | { kind: 'dps-operation-status'; rid: string; operationId: string }

export type ParsedDpsTopic = DpsRequest | { kind: 'invalid'; reason: string }

function query(topic: string, path: string): URLSearchParams | undefined {
  if (!topic.startsWith(path)) return undefined
  return new URLSearchParams(topic.slice(path.length))
}

export function parseDpsTopic(topic: string): ParsedDpsTopic {
  const reg = query(topic, '$dps/registrations/PUT/iotdps-register/?')
  if (reg) {
    const rid = reg.get('$rid')
    return rid ? { kind: 'dps-register', rid } : { kind: 'invalid', reason: 'register request without $rid' }
  }
  const st = query(topic, '$dps/registrations/GET/iotdps-get-operationstatus/?')
  if (st) {
    const rid = st.get('$rid')
    const operationId = st.get('operationId')
    if (!rid) return { kind: 'invalid', reason: 'operation status request without $rid' }
    if (!operationId) return { kind: 'invalid', reason: 'operation status request without operationId' }
    return { kind: 'dps-operation-status', rid, operationId }
  }
  return { kind: 'invalid', reason: `"${topic.slice(0, 80)}" is not a DPS request topic (iotdps-register or iotdps-get-operationstatus)` }
}

export function formatDpsResponseTopic(status: number, rid: string, retryAfterSecs?: number): string {
  const q = new URLSearchParams({ $rid: rid })
  if (retryAfterSecs !== undefined) q.set('retry-after', String(retryAfterSecs))
  // `$` stays literal, as DPS sends it (the SDK parses the query with querystring).
  return `$dps/registrations/res/${status}/?${q.toString().replace(/%24/g, '$')}`
}

/** The only filter a DPS connection may subscribe to (served from its private namespace). */
export function isDpsResponseFilter(filter: string): boolean {
  return filter === DPS_RESPONSE_FILTER || filter.startsWith('$dps/registrations/res/')
}

export function isDpsRequest(r: { kind: string }): r is DpsRequest {
  return r.kind === 'dps-register' || r.kind === 'dps-operation-status'
}
