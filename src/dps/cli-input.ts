/**
 * `az iot dps enrollment[-group] create|update` flags → the REST body `Dps.put…` takes. Only the
 * flags given appear in the body, so an update keeps everything else (parseEnrollment merges).
 */
import { UsageError } from '../errors.js'
import { parseJsonArg } from '../service/hub-service.js'
import { readDocument } from '../service/edgehub.js'

export interface EnrollmentFlags {
  attestationType?: string
  primaryKey?: string
  secondaryKey?: string
  certificatePath?: string
  secondaryCertificatePath?: string
  /** Groups: `--root-ca-name/--ca-name` (edgemq has one CA, the hub's, which any name refers to). */
  caName?: string
  secondaryCaName?: string
  deviceId?: string
  initialTwinTags?: string
  initialTwinProperties?: string
  edgeEnabled?: string
  provisioningStatus?: string
  reprovisionPolicy?: string
  parentDeviceId?: string
}

/** az's `--reprovision-policy` values. */
const REPROVISION: Record<string, { updateHubAssignment: boolean; migrateDeviceData: boolean }> = {
  reprovisionandmigratedata: { updateHubAssignment: true, migrateDeviceData: true },
  reprovisionandresetdata: { updateHubAssignment: true, migrateDeviceData: false },
  never: { updateHubAssignment: false, migrateDeviceData: true },
}

export const REPROVISION_POLICIES = Object.keys(REPROVISION)

function jsonObject(value: string, what: string): Record<string, unknown> {
  const v = parseJsonArg(value, what)
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${what} must be a JSON object`)
  return v as Record<string, unknown>
}

function attestation(kind: 'enrollment' | 'enrollmentGroup', f: EnrollmentFlags): Record<string, unknown> | undefined {
  const type = f.attestationType?.toLowerCase()
  const keys = f.primaryKey !== undefined || f.secondaryKey !== undefined
  const certs = f.certificatePath !== undefined || f.secondaryCertificatePath !== undefined
  const cas = f.caName !== undefined || f.secondaryCaName !== undefined
  if (type === 'tpm') throw new UsageError('TPM attestation is not supported by edgemq (it has no TPM endorsement key store)', 'use --attestation-type symmetrickey or x509')
  if (type !== undefined && type !== 'symmetrickey' && type !== 'x509') throw new UsageError(`--attestation-type "${f.attestationType}" is not symmetrickey, x509 or tpm`)
  if (keys && (certs || cas || type === 'x509')) throw new UsageError('--primary-key/--secondary-key are for symmetric key attestation, not x509')
  if ((certs || cas) && type === 'symmetrickey') throw new UsageError('--certificate-path/--ca-name are for x509 attestation, not symmetrickey')
  if (type === 'symmetrickey' || keys) {
    return { ...(type ? { type: 'symmetricKey' } : {}), symmetricKey: { ...(f.primaryKey ? { primaryKey: f.primaryKey } : {}), ...(f.secondaryKey ? { secondaryKey: f.secondaryKey } : {}) } }
  }
  if (type === undefined && !certs && !cas) return undefined
  const cert = (path: string | undefined) => (path === undefined ? undefined : { certificate: readDocument(path) })
  const slots = { ...(f.certificatePath !== undefined ? { primary: cert(f.certificatePath) } : {}), ...(f.secondaryCertificatePath !== undefined ? { secondary: cert(f.secondaryCertificatePath) } : {}) }
  if (kind === 'enrollment') {
    if (cas) throw new UsageError('--ca-name applies to enrollment groups; an individual X.509 enrollment takes --certificate-path')
    if (type && !f.certificatePath) throw new UsageError('an individual x509 enrollment needs --certificate-path (the device certificate)')
    return { type: 'x509', x509: { clientCertificates: slots } }
  }
  if (cas) return { type: 'x509', x509: { caReferences: { ...(f.caName ? { primary: f.caName } : {}), ...(f.secondaryCaName ? { secondary: f.secondaryCaName } : {}) } } }
  if (type && !f.certificatePath) throw new UsageError('an x509 enrollment group needs --certificate-path (its CA certificate) or --ca-name hub (the hub CA)')
  return { type: 'x509', x509: { signingCertificates: slots } }
}

export function enrollmentBody(kind: 'enrollment' | 'enrollmentGroup', f: EnrollmentFlags): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  const a = attestation(kind, f)
  if (a) body.attestation = a
  if (f.deviceId !== undefined) {
    if (kind === 'enrollmentGroup') throw new UsageError('--device-id applies to individual enrollments (a group\'s devices are named by their registration ids)')
    body.deviceId = f.deviceId
  }
  if (f.initialTwinTags !== undefined || f.initialTwinProperties !== undefined) {
    body.initialTwin = {
      ...(f.initialTwinTags !== undefined ? { tags: jsonObject(f.initialTwinTags, '--initial-twin-tags') } : {}),
      ...(f.initialTwinProperties !== undefined ? { properties: { desired: jsonObject(f.initialTwinProperties, '--initial-twin-properties') } } : {}),
    }
  }
  if (f.edgeEnabled !== undefined) body.capabilities = { iotEdge: f.edgeEnabled === 'true' }
  if (f.provisioningStatus !== undefined) body.provisioningStatus = f.provisioningStatus
  if (f.reprovisionPolicy !== undefined) {
    const rp = REPROVISION[f.reprovisionPolicy.toLowerCase()]
    if (!rp) throw new UsageError(`--reprovision-policy "${f.reprovisionPolicy}" is not one of ${REPROVISION_POLICIES.join(', ')}`)
    body.reprovisionPolicy = rp
  }
  if (f.parentDeviceId !== undefined) body.parentDeviceId = f.parentDeviceId
  return body
}
