/**
 * DPS's documents, in the service REST API's JSON (api-version 2021-10-01), which is also what
 * `az iot dps enrollment … show` prints: IndividualEnrollment, EnrollmentGroup and
 * DeviceRegistrationState. `parseEnrollment` validates a body (REST PUT or CLI flags) into the
 * stored document; `enrollmentView` is what goes back out (certificates as `info` only).
 */
import { X509Certificate } from 'node:crypto'

import { UsageError } from '../errors.js'
import { thumbprints } from '../pki/index.js'
import { generateKey } from '../registry/registry.js'
import { newEtag } from '../registry/twin-record.js'
import { validateDeviceId, validateKey } from '../registry/validate.js'

export interface X509CertificateInfo {
  subjectName: string
  sha1Thumbprint: string
  sha256Thumbprint: string
  issuerName: string
  notBeforeUtc: string
  notAfterUtc: string
  serialNumber: string
  version: number
}

export interface X509CertificateWithInfo {
  /** PEM as uploaded; kept for attestation, never shown (`null` in views, as DPS answers). */
  certificate?: string | null
  info?: X509CertificateInfo
}

export interface X509Certificates {
  primary?: X509CertificateWithInfo | null
  secondary?: X509CertificateWithInfo | null
}

export interface AttestationMechanism {
  type: 'symmetricKey' | 'x509' | 'tpm'
  symmetricKey?: { primaryKey: string; secondaryKey: string }
  x509?: {
    clientCertificates?: X509Certificates | null
    signingCertificates?: X509Certificates | null
    /** Names of uploaded CAs; edgemq has one, the hub CA, which any name refers to. */
    caReferences?: { primary?: string | null; secondary?: string | null } | null
  }
}

export interface ReprovisionPolicy {
  updateHubAssignment: boolean
  migrateDeviceData: boolean
}

export interface InitialTwin {
  tags: Record<string, unknown>
  properties: { desired: Record<string, unknown> }
}

export type ProvisioningStatus = 'enabled' | 'disabled'

interface EnrollmentCommon {
  attestation: AttestationMechanism
  capabilities: { iotEdge: boolean }
  initialTwin: InitialTwin
  provisioningStatus: ProvisioningStatus
  reprovisionPolicy: ReprovisionPolicy
  allocationPolicy: 'hashed'
  iotHubHostName: string
  iotHubs: string[]
  /** edgemq extension (DPS has no such field): the parent IoT Edge device the identity is created under. */
  parentDeviceId?: string
  etag: string
  createdDateTimeUtc: string
  lastUpdatedDateTimeUtc: string
}

export interface IndividualEnrollment extends EnrollmentCommon {
  registrationId: string
  deviceId?: string
  registrationState?: DeviceRegistrationState
}

export interface EnrollmentGroup extends EnrollmentCommon {
  enrollmentGroupId: string
}

export type EnrollmentKind = 'enrollment' | 'enrollmentGroup'

export interface DeviceRegistrationState {
  registrationId: string
  createdDateTimeUtc: string
  assignedHub: string
  deviceId: string
  status: 'assigned' | 'failed' | 'disabled'
  substatus: 'initialAssignment' | 'deviceDataMigrated' | 'deviceDataReset' | 'reprovisionedToInitialAssignment'
  lastUpdatedDateTimeUtc: string
  etag: string
  errorCode?: number
  errorMessage?: string
  /** How it attested, and through which group (the device-side registration result carries these). */
  symmetricKey?: { enrollmentGroupId?: string }
  x509?: { enrollmentGroupId?: string }
  payload?: unknown
}

/** DPS: up to 128 of alphanumerics and `-._:`, ending in an alphanumeric or `-`; case-insensitive. */
const REGISTRATION_ID_RE = /^[A-Za-z0-9\-._:]{0,127}[A-Za-z0-9-]$/

export function validateRegistrationId(id: unknown, what = 'registration id'): string {
  if (typeof id !== 'string' || !REGISTRATION_ID_RE.test(id)) {
    const shown = typeof id === 'string' ? `"${id.length > 60 ? id.slice(0, 60) + '…' : id}"` : String(id)
    throw new UsageError(`invalid ${what} ${shown}`, 'DPS ids are 1–128 characters of A-Z a-z 0-9 and -._: ending in a letter, digit or -')
  }
  return id
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function objectField(v: unknown, path: string): Record<string, unknown> {
  if (v === undefined || v === null) return {}
  if (!isObject(v)) throw new UsageError(`${path} must be a JSON object`)
  return v
}

/** A certificate as PEM or base64 DER (DPS accepts both) → PEM and DPS's `info`. */
export function certificateWithInfo(text: string, what: string): X509CertificateWithInfo {
  let cert: X509Certificate
  const trimmed = text.trim()
  try {
    cert = new X509Certificate(trimmed.startsWith('-----BEGIN') ? trimmed : Buffer.from(trimmed, 'base64'))
  } catch {
    throw new UsageError(`${what} is not a readable X.509 certificate (PEM or base64 DER)`)
  }
  const tp = thumbprints(cert.raw)
  const name = (s: string) => s.split('\n').filter(Boolean).join(', ')
  return {
    certificate: cert.toString(),
    info: {
      subjectName: name(cert.subject),
      sha1Thumbprint: tp.sha1,
      sha256Thumbprint: tp.sha256,
      issuerName: name(cert.issuer),
      notBeforeUtc: new Date(cert.validFrom).toISOString(),
      notAfterUtc: new Date(cert.validTo).toISOString(),
      serialNumber: cert.serialNumber,
      version: 3,
    },
  }
}

function certificates(v: unknown, old: X509Certificates | null | undefined, path: string): X509Certificates | undefined {
  if (v === undefined || v === null) return undefined
  const o = objectField(v, path)
  const one = (slot: 'primary' | 'secondary'): X509CertificateWithInfo | undefined => {
    const c = o[slot]
    // A slot the body leaves out keeps its certificate (`enrollment update --scp` alone).
    if (c === undefined) return old?.[slot] ?? undefined
    if (c === null) return undefined
    const cert = objectField(c, `${path}.${slot}`)
    if (typeof cert.certificate === 'string' && cert.certificate !== '') return certificateWithInfo(cert.certificate, `${path}.${slot}.certificate`)
    // A GET → PUT round trip sends `info` back without the certificate: keep the stored one.
    const prev = old?.[slot]
    const info = cert.info as { sha1Thumbprint?: string } | undefined
    if (prev?.certificate && (!info || info.sha1Thumbprint === prev.info?.sha1Thumbprint)) return prev
    throw new UsageError(`${path}.${slot}.certificate is required (PEM or base64 DER)`)
  }
  const primary = one('primary')
  if (!primary) throw new UsageError(`${path}.primary is required`)
  const secondary = one('secondary')
  return secondary ? { primary, secondary } : { primary }
}

function attestation(v: unknown, kind: EnrollmentKind, old: AttestationMechanism | undefined): AttestationMechanism {
  if (v === undefined || v === null) {
    if (old) return old
    throw new UsageError('attestation is required (type symmetricKey or x509)')
  }
  const a = objectField(v, 'attestation')
  // An update that changes only keys or certificates keeps the attestation type.
  const type = a.type ?? old?.type
  if (type === 'tpm') throw new UsageError('TPM attestation is not supported by edgemq (it has no TPM endorsement key store)', 'use --attestation-type symmetrickey or x509')
  if (type === 'symmetricKey') {
    const k = objectField(a.symmetricKey, 'attestation.symmetricKey')
    const key = (x: unknown, which: string, prev?: string) => {
      if (typeof x === 'string' && x !== '') {
        validateKey(x, which)
        return x
      }
      return prev ?? generateKey()
    }
    const prev = old?.type === 'symmetricKey' ? old.symmetricKey : undefined
    return { type, symmetricKey: { primaryKey: key(k.primaryKey, 'primary', prev?.primaryKey), secondaryKey: key(k.secondaryKey, 'secondary', prev?.secondaryKey) } }
  }
  if (type === 'x509') {
    const x = objectField(a.x509, 'attestation.x509')
    const prev = old?.type === 'x509' ? old.x509 : undefined
    if (kind === 'enrollment') {
      const clientCertificates = certificates(x.clientCertificates, prev?.clientCertificates, 'attestation.x509.clientCertificates')
      if (!clientCertificates) throw new UsageError('an individual X.509 enrollment needs attestation.x509.clientCertificates.primary', 'pass --certificate-path <device cert .pem>')
      return { type, x509: { clientCertificates } }
    }
    const signingCertificates = certificates(x.signingCertificates, prev?.signingCertificates, 'attestation.x509.signingCertificates')
    if (signingCertificates) return { type, x509: { signingCertificates } }
    const refs = objectField(x.caReferences, 'attestation.x509.caReferences')
    if (typeof refs.primary === 'string' && refs.primary !== '') {
      return { type, x509: { caReferences: { primary: refs.primary, ...(typeof refs.secondary === 'string' && refs.secondary ? { secondary: refs.secondary } : {}) } } }
    }
    throw new UsageError('an X.509 enrollment group needs attestation.x509.signingCertificates.primary or caReferences.primary', 'pass --certificate-path <CA .pem>, or --ca-name hub for the hub CA')
  }
  throw new UsageError(`attestation.type "${String(type)}" is not symmetricKey, x509 or tpm`)
}

function initialTwin(v: unknown, old: InitialTwin | undefined): InitialTwin {
  if (v === undefined || v === null) return old ?? { tags: {}, properties: { desired: {} } }
  const t = objectField(v, 'initialTwin')
  const props = objectField(t.properties, 'initialTwin.properties')
  return { tags: objectField(t.tags, 'initialTwin.tags'), properties: { desired: objectField(props.desired, 'initialTwin.properties.desired') } }
}

function reprovisionPolicy(v: unknown, old: ReprovisionPolicy | undefined): ReprovisionPolicy {
  if (v === undefined || v === null) return old ?? { updateHubAssignment: true, migrateDeviceData: true }
  const r = objectField(v, 'reprovisionPolicy')
  const bool = (x: unknown, name: string, dflt: boolean) => {
    if (x === undefined || x === null) return dflt
    if (typeof x !== 'boolean') throw new UsageError(`reprovisionPolicy.${name} must be true or false`)
    return x
  }
  return { updateHubAssignment: bool(r.updateHubAssignment, 'updateHubAssignment', true), migrateDeviceData: bool(r.migrateDeviceData, 'migrateDeviceData', true) }
}

export interface ParseContext {
  /** The hub host enrollments are allocated to (`iotHubHostName`). */
  hubHostName: string
  now?: string
}

/**
 * A REST body (or the CLI's equivalent) → the stored document. `old` is the current document on
 * an update: fields the body leaves out keep their value, keys and certificates included.
 */
export function parseEnrollment(kind: 'enrollment', body: unknown, ctx: ParseContext, old?: IndividualEnrollment): IndividualEnrollment
export function parseEnrollment(kind: 'enrollmentGroup', body: unknown, ctx: ParseContext, old?: EnrollmentGroup): EnrollmentGroup
export function parseEnrollment(kind: EnrollmentKind, body: unknown, ctx: ParseContext, old?: IndividualEnrollment | EnrollmentGroup): IndividualEnrollment | EnrollmentGroup {
  const b = objectField(body, 'the enrollment')
  const t = ctx.now ?? new Date().toISOString()
  const status = b.provisioningStatus ?? old?.provisioningStatus ?? 'enabled'
  if (status !== 'enabled' && status !== 'disabled') throw new UsageError(`provisioningStatus "${String(status)}" is not enabled or disabled`)
  const caps = objectField(b.capabilities, 'capabilities')
  if (caps.iotEdge !== undefined && typeof caps.iotEdge !== 'boolean') throw new UsageError('capabilities.iotEdge must be true or false')
  const parent = b.parentDeviceId === undefined ? old?.parentDeviceId : b.parentDeviceId === null || b.parentDeviceId === '' ? undefined : String(b.parentDeviceId)
  if (parent !== undefined) validateDeviceId(parent, 'parent device id')
  const common: EnrollmentCommon = {
    attestation: attestation(b.attestation, kind, old?.attestation),
    capabilities: { iotEdge: (caps.iotEdge as boolean | undefined) ?? old?.capabilities.iotEdge ?? false },
    initialTwin: initialTwin(b.initialTwin, old?.initialTwin),
    provisioningStatus: status,
    reprovisionPolicy: reprovisionPolicy(b.reprovisionPolicy, old?.reprovisionPolicy),
    allocationPolicy: 'hashed',
    iotHubHostName: ctx.hubHostName,
    iotHubs: [ctx.hubHostName],
    ...(parent ? { parentDeviceId: parent } : {}),
    etag: newEtag(),
    createdDateTimeUtc: old?.createdDateTimeUtc ?? t,
    lastUpdatedDateTimeUtc: t,
  }
  if (kind === 'enrollmentGroup') {
    return { enrollmentGroupId: validateRegistrationId(b.enrollmentGroupId ?? (old as EnrollmentGroup | undefined)?.enrollmentGroupId, 'enrollment group id'), ...common }
  }
  const registrationId = validateRegistrationId(b.registrationId ?? (old as IndividualEnrollment | undefined)?.registrationId)
  const deviceId = b.deviceId === undefined ? (old as IndividualEnrollment | undefined)?.deviceId : b.deviceId === null || b.deviceId === '' ? undefined : String(b.deviceId)
  if (deviceId !== undefined) validateDeviceId(deviceId)
  return { registrationId, ...(deviceId ? { deviceId } : {}), ...common }
}

function certView(c: X509Certificates | null | undefined): X509Certificates | null {
  if (!c) return null
  const one = (x: X509CertificateWithInfo | null | undefined) => (x ? { certificate: null, info: x.info } : null)
  return { primary: one(c.primary), secondary: one(c.secondary) }
}

/** What the REST API and the CLI show: uploaded certificates as `info` only, as DPS does. */
export function enrollmentView<T extends IndividualEnrollment | EnrollmentGroup>(doc: T, registrationState?: DeviceRegistrationState): T {
  const a = doc.attestation
  const attestationView: AttestationMechanism =
    a.type === 'x509'
      ? {
          type: 'x509',
          x509: {
            clientCertificates: certView(a.x509?.clientCertificates),
            signingCertificates: certView(a.x509?.signingCertificates),
            caReferences: a.x509?.caReferences ?? null,
          },
        }
      : a
  return { ...doc, attestation: attestationView, ...(registrationState ? { registrationState } : {}) }
}
