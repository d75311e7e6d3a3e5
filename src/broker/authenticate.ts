/**
 * IoT Hub authentication for a CONNECT (PROTOCOL.md §1). Pure over its inputs: the broker
 * hands in the CONNECT fields, the TLS peer certificate and a registry lookup; the result is
 * either an identity or a CONNACK code with the real reason (logged, never sent on the wire).
 */
import { certMatchesThumbprint, verifyClientCertAgainstCa } from '../pki/index.js'
import type { DeviceRecord, ModuleRecord } from '../registry/types.js'
import { deviceResource, parseSasToken, verifySasToken, type SasFields } from '../sas/index.js'
import type { DpsUsername } from '../dps/topics.js'
import { parseClientId, parseUsername, type ClientIdentity } from './identity.js'

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
export const CONNACK = {
  BAD_PROTOCOL: 1,
  BAD_CLIENT_ID: 2,
  UNAVAILABLE: 3,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const
export type ConnackCode = (typeof CONNACK)[keyof typeof CONNACK]

export type AuthMethod = 'sas' | 'x509-thumbprint' | 'x509-ca' | 'dps'

export interface AuthInput {
  clientId: string
  username?: string
  password?: Buffer
  /** DER of the TLS client certificate, when one was presented. */
  peerCertDer?: Buffer
}

export interface AuthContext {
  hostName: string
  /**
   * Other host names devices may name in their username and SAS resource: the host DPS assigns
   * (`localhost` by default), so `HostName=<assignedHub>;DeviceId=…;SharedAccessKey=…` connects.
   */
  aliasHostNames?: readonly string[]
  caPem?: string
  lookupDevice(deviceId: string): DeviceRecord | undefined | Promise<DeviceRecord | undefined>
  lookupModule(deviceId: string, moduleId: string): ModuleRecord | undefined | Promise<ModuleRecord | undefined>
  now?: number
  /** SAS clock skew tolerance in seconds (default PROTOCOL.md §2's 300). */
  skewSecs?: number
}

export type AuthResult =
  | { ok: true; identity: ClientIdentity; method: AuthMethod; expiresAt?: number; device: DeviceRecord; module?: ModuleRecord }
  | { ok: false; code: ConnackCode; reason: string }

function refuse(code: ConnackCode, reason: string): AuthResult {
  return { ok: false, code, reason }
}

/** The SAS resources a device may sign for: the hub's host name, or an alias used verbatim (`localhost/devices/<id>`). */
function resourcesFor(hosts: readonly string[], deviceId: string, moduleId?: string): string[] {
  const [hub, ...aliases] = hosts
  const path = moduleId ? `/devices/${deviceId}/modules/${moduleId}` : `/devices/${deviceId}`
  return [deviceResource(hub, deviceId, moduleId), ...aliases.map((h) => h + path)]
}

export async function authenticate(input: AuthInput, ctx: AuthContext): Promise<AuthResult> {
  const identity = parseClientId(input.clientId)
  if (!identity) return refuse(CONNACK.BAD_CLIENT_ID, `client id "${input.clientId}" is not <deviceId> or <deviceId>/<moduleId>`)

  if (input.username === undefined) return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, 'no username')
  const user = parseUsername(input.username)
  if (!user) return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `username "${input.username}" is not <hub>.azure-devices.net/<deviceId>/?api-version=…`)
  const hosts = [ctx.hostName, ...(ctx.aliasHostNames ?? [])]
  if (!hosts.some((h) => h.toLowerCase() === user.host.toLowerCase())) {
    return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `username names hub "${user.host}", this hub is "${ctx.hostName}"`)
  }
  if (user.identity !== identity.clientId) {
    return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `username identity "${user.identity}" does not match client id "${identity.clientId}"`)
  }

  const device = await ctx.lookupDevice(identity.deviceId)
  if (!device) return refuse(CONNACK.NOT_AUTHORIZED, `unknown device "${identity.deviceId}"`)
  let module: ModuleRecord | undefined
  if (identity.moduleId) {
    module = await ctx.lookupModule(identity.deviceId, identity.moduleId)
    if (!module) return refuse(CONNACK.NOT_AUTHORIZED, `unknown module "${identity.moduleId}" on device "${identity.deviceId}"`)
  }
  if (device.status !== 'enabled') return refuse(CONNACK.NOT_AUTHORIZED, `device "${device.deviceId}" is disabled`)

  const hasPassword = input.password !== undefined && input.password.length > 0
  const hasCert = input.peerCertDer !== undefined && input.peerCertDer.length > 0
  if (hasPassword && hasCert) return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, 'both a client certificate and a password were sent (send one)')

  if (hasCert) {
    if (module) return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, 'modules authenticate with SAS tokens only, not certificates')
    const der = input.peerCertDer as Buffer
    if (device.authType === 'selfSigned') {
      if (!certMatchesThumbprint(der, [device.primaryThumbprint, device.secondaryThumbprint])) {
        return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, 'client certificate thumbprint matches neither the primary nor the secondary thumbprint')
      }
      return { ok: true, identity, method: 'x509-thumbprint', device }
    }
    if (device.authType === 'certificateAuthority') {
      if (!ctx.caPem) return refuse(CONNACK.UNAVAILABLE, 'no hub CA loaded to verify client certificates')
      const v = verifyClientCertAgainstCa(der, ctx.caPem)
      if (!v.ok) return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `client certificate rejected: ${v.reason}`)
      if (v.commonName !== device.deviceId) {
        return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `client certificate CN "${v.commonName}" is not the device id "${device.deviceId}"`)
      }
      return { ok: true, identity, method: 'x509-ca', device }
    }
    return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `device "${device.deviceId}" uses SAS keys, but a certificate was presented`)
  }

  if (!hasPassword) {
    return refuse(
      CONNACK.BAD_USERNAME_OR_PASSWORD,
      device.authType === 'sas' ? 'no password (SAS token) sent' : 'no client certificate sent (X.509 devices connect over TLS with their certificate)',
    )
  }
  const rec = module ?? device
  if (rec.authType !== 'sas') return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `device "${device.deviceId}" uses X.509, but a password was sent`)

  let fields: SasFields
  try {
    fields = parseSasToken((input.password as Buffer).toString('utf8'))
  } catch (err) {
    return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, `malformed SAS token: ${(err as Error).message}`)
  }
  const ownResources = resourcesFor(hosts, identity.deviceId, identity.moduleId)
  let result = verifySasToken(fields, [rec.primaryKey ?? '', rec.secondaryKey ?? ''], { acceptedResources: ownResources, now: ctx.now, skewSecs: ctx.skewSecs })
  // PROTOCOL.md §2: a device-scoped token (signed with the device's key) is accepted for its modules.
  if (!result.ok && module && result.failure === 'resource') {
    result = verifySasToken(fields, [device.primaryKey ?? '', device.secondaryKey ?? ''], {
      acceptedResources: resourcesFor(hosts, identity.deviceId),
      now: ctx.now,
      skewSecs: ctx.skewSecs,
    })
  }
  if (!result.ok) return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, result.reason)
  return { ok: true, identity, method: 'sas', expiresAt: fields.se, device, ...(module ? { module } : {}) }
}

/** What a DPS registration connection presented at CONNECT (attested at its register request). */
export interface DpsCredentials {
  registrationId: string
  idScope: string
  sas?: string
  certDer?: Buffer
}

export type DpsAuthResult = { ok: true; credentials: DpsCredentials } | { ok: false; code: ConnackCode; reason: string }

/**
 * A DPS CONNECT (username `<idScope>/registrations/<registrationId>/api-version=…`). Only its shape
 * is checked here: the SAS token or certificate is attested when the device sends its register
 * request, so a wrong key or a disabled enrollment is answered with DPS's error body (401002) as
 * the device SDKs expect, not a bare CONNACK. Until then the connection can do nothing but that.
 */
export function authenticateDps(input: AuthInput, user: DpsUsername, idScope: string | undefined): DpsAuthResult {
  if (input.clientId !== user.registrationId) {
    return { ok: false, code: CONNACK.BAD_CLIENT_ID, reason: `DPS client id "${input.clientId}" is not the registration id "${user.registrationId}" of the username` }
  }
  if (!idScope || user.idScope !== idScope) return { ok: false, code: CONNACK.NOT_AUTHORIZED, reason: `DPS id scope "${user.idScope}" is not this hub's "${idScope ?? '(none)'}"` }
  const hasPassword = input.password !== undefined && input.password.length > 0
  const hasCert = input.peerCertDer !== undefined && input.peerCertDer.length > 0
  if (hasPassword && hasCert) return { ok: false, code: CONNACK.BAD_USERNAME_OR_PASSWORD, reason: 'both a client certificate and a password were sent (send one)' }
  if (!hasPassword && !hasCert) return { ok: false, code: CONNACK.BAD_USERNAME_OR_PASSWORD, reason: 'neither a SAS token nor a client certificate was sent' }
  return {
    ok: true,
    credentials: { registrationId: user.registrationId, idScope: user.idScope, ...(hasPassword ? { sas: (input.password as Buffer).toString('utf8') } : { certDer: input.peerCertDer }) },
  }
}
