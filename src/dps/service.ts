/**
 * The Device Provisioning Service of the local hub: enrollments, enrollment groups and
 * registration states kept in the registry store; attestation (symmetric key SAS, X.509
 * thumbprint or chain) and allocation to this hub (create or update the device identity, apply
 * the initial twin, reprovision policy). Used by the CLI (offline, on the home's store), the
 * service REST API and the broker's DPS MQTT endpoint (src/broker/dps.ts).
 */
import { randomBytes } from 'node:crypto'

import { ConflictError, NotFoundError, PreconditionFailedError, toDpsWireError, UnauthorizedError, UsageError, withWireCode } from '../errors.js'
import { certMatchesThumbprint, verifyClientCertAgainstCa } from '../pki/index.js'
import type { Registry } from '../registry/registry.js'
import { newEtag } from '../registry/twin-record.js'
import type { DeviceRecord, DpsDocKind, DpsSettings, HubRecord, Store, TwinKey } from '../registry/types.js'
import { buildSasToken, checkPolicyKey, connectionStringFields, parseSasToken, verifySasToken } from '../sas/index.js'
import { deriveDeviceKey, registrationResource } from './keys.js'
import {
  enrollmentView,
  parseEnrollment,
  validateRegistrationId,
  type DeviceRegistrationState,
  type EnrollmentGroup,
  type EnrollmentKind,
  type IndividualEnrollment,
  type X509Certificates,
} from './model.js'
import { DPS_OWNER_POLICY, DPS_SERVICE_HOST, dpsPolicy, newDpsSettings } from './settings.js'

export interface DpsContext {
  store: Store
  registry: Registry
  hub: HubRecord
}

/** What a device presents: its registration id and a SAS token (symmetric key) or its TLS client certificate. */
export interface AttestationInput {
  registrationId: string
  idScope: string
  sas?: string
  certDer?: Buffer
  now?: number
}

/** Whom a device proved to be, and under which enrollment it is allocated. */
export interface Attested {
  registrationId: string
  enrollment: IndividualEnrollment | EnrollmentGroup
  group: boolean
  method: 'symmetricKey' | 'x509'
}

/** How allocation writes a twin: through the broker (connected devices see desired changes) or the store. */
export type TwinWriter = (key: TwinKey, update: { tags: Record<string, unknown>; desired: Record<string, unknown> }, replace: boolean) => Promise<unknown>

type WriteMode = 'create' | 'update' | 'upsert'

const notFound = (what: string, id: string, wireCode = 404201) => withWireCode(new NotFoundError(`${what} "${id}" not found`), String(wireCode))
const unauthorized = (reason: string) => withWireCode(new UnauthorizedError(reason), '401002')

function idOf(kind: EnrollmentKind, doc: IndividualEnrollment | EnrollmentGroup): string {
  return kind === 'enrollment' ? (doc as IndividualEnrollment).registrationId : (doc as EnrollmentGroup).enrollmentGroupId
}

function label(kind: EnrollmentKind): string {
  return kind === 'enrollment' ? 'enrollment' : 'enrollment group'
}

function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
}

/** Store ids are case-insensitive, as DPS's are. */
const key = (id: string) => id.toLowerCase()

export class Dps {
  constructor(private readonly ctx: DpsContext) {}

  /** The hub's DPS settings (every hub has them: openHub adds them to older homes). */
  get settings(): DpsSettings {
    return this.ctx.hub.dps ?? newDpsSettings()
  }

  get idScope(): string {
    return this.settings.idScope
  }

  // ---- enrollments and enrollment groups ----

  async getEnrollment(id: string): Promise<IndividualEnrollment> {
    return this.getDoc('enrollment', id)
  }

  async getEnrollmentGroup(id: string): Promise<EnrollmentGroup> {
    return this.getDoc('enrollmentGroup', id)
  }

  /** The stored document (certificates included): attestation reads it. */
  private async getDoc<T extends IndividualEnrollment | EnrollmentGroup>(kind: EnrollmentKind, id: string): Promise<T> {
    const doc = (await this.ctx.store.getDpsDoc(kind, key(id))) as T | undefined
    if (!doc) throw notFound(label(kind), id)
    return doc
  }

  /** An enrollment as shown (REST GET, `dps enrollment show`): with its registration state, certificates as info. */
  async showEnrollment(id: string): Promise<IndividualEnrollment> {
    const doc = await this.getEnrollment(id)
    return enrollmentView(doc, await this.findRegistration(doc.registrationId))
  }

  async showEnrollmentGroup(id: string): Promise<EnrollmentGroup> {
    return enrollmentView(await this.getEnrollmentGroup(id))
  }

  async listEnrollments(): Promise<IndividualEnrollment[]> {
    const regs = new Map((await this.listRegistrations()).map((r) => [key(r.registrationId), r]))
    return ((await this.ctx.store.listDpsDocs('enrollment')) as IndividualEnrollment[]).map((d) => enrollmentView(d, regs.get(key(d.registrationId))))
  }

  async listEnrollmentGroups(): Promise<EnrollmentGroup[]> {
    return ((await this.ctx.store.listDpsDocs('enrollmentGroup')) as EnrollmentGroup[]).map((d) => enrollmentView(d))
  }

  /**
   * Create, update or either (REST PUT: a body with no If-Match creates or replaces). On an update
   * the body is applied over the stored document; `ifMatch` must be its etag (or `*`).
   */
  async putEnrollment(body: unknown, opts: { mode?: WriteMode; ifMatch?: string; id?: string } = {}): Promise<IndividualEnrollment> {
    return this.putDoc('enrollment', body, opts) as Promise<IndividualEnrollment>
  }

  async putEnrollmentGroup(body: unknown, opts: { mode?: WriteMode; ifMatch?: string; id?: string } = {}): Promise<EnrollmentGroup> {
    return this.putDoc('enrollmentGroup', body, opts) as Promise<EnrollmentGroup>
  }

  private async putDoc(kind: EnrollmentKind, body: unknown, opts: { mode?: WriteMode; ifMatch?: string; id?: string }): Promise<IndividualEnrollment | EnrollmentGroup> {
    const idField = kind === 'enrollment' ? 'registrationId' : 'enrollmentGroupId'
    const b = { ...((body ?? {}) as Record<string, unknown>) }
    if (opts.id !== undefined) {
      if (b[idField] !== undefined && String(b[idField]).toLowerCase() !== opts.id.toLowerCase()) {
        throw new UsageError(`${idField} "${String(b[idField])}" in the body does not match "${opts.id}" in the path`)
      }
      b[idField] = opts.id
    }
    const id = validateRegistrationId(b[idField], kind === 'enrollment' ? 'registration id' : 'enrollment group id')
    const old = (await this.ctx.store.getDpsDoc(kind, key(id))) as IndividualEnrollment | EnrollmentGroup | undefined
    const mode = opts.mode ?? 'upsert'
    if (old && mode === 'create') throw new ConflictError(`${label(kind)} "${id}" already exists`, `change it with \`edgemq dps ${kind === 'enrollment' ? 'enrollment' : 'enrollment-group'} update\``)
    if (!old && mode === 'update') throw notFound(label(kind), id)
    const ifMatch = unquote(opts.ifMatch)
    if (ifMatch && ifMatch !== '*' && (!old || old.etag !== ifMatch)) {
      throw new PreconditionFailedError(`etag "${ifMatch}" does not match the ${label(kind)}'s current etag${old ? ` "${old.etag}"` : ''}`, 'show it again and retry with its etag')
    }
    const ctx = { hubHostName: this.settings.assignedHub }
    const doc = kind === 'enrollment' ? parseEnrollment('enrollment', b, ctx, old as IndividualEnrollment | undefined) : parseEnrollment('enrollmentGroup', b, ctx, old as EnrollmentGroup | undefined)
    delete (doc as IndividualEnrollment).registrationState // derived on read, never stored
    await this.ctx.store.putDpsDoc(kind, key(idOf(kind, doc)), doc)
    return kind === 'enrollment' ? this.showEnrollment(id) : enrollmentView(doc)
  }

  /**
   * The bulk operation (`POST /enrollments`, the SDK's runBulkEnrollmentOperation): each enrollment
   * on its own, failures listed with DPS's error code instead of failing the whole request.
   */
  async bulkEnrollments(body: unknown): Promise<{ isSuccessful: boolean; errors: { registrationId: string; errorCode: number; errorStatus: string }[] }> {
    const b = (body ?? {}) as { mode?: unknown; enrollments?: unknown }
    const modes: Record<string, WriteMode | 'delete' | 'ifMatch'> = { create: 'create', update: 'upsert', updateIfMatchETag: 'ifMatch', delete: 'delete' }
    const mode = typeof b.mode === 'string' ? modes[b.mode] : undefined
    if (!mode) throw new UsageError(`bulk operation mode "${String(b.mode)}" is not create, update, updateIfMatchETag or delete`)
    if (!Array.isArray(b.enrollments) || b.enrollments.length === 0) throw new UsageError('a bulk operation needs a non-empty enrollments array')
    if (b.enrollments.length > 10) throw new UsageError('a bulk operation takes at most 10 enrollments (as DPS)')
    const errors: { registrationId: string; errorCode: number; errorStatus: string }[] = []
    for (const e of b.enrollments as { registrationId?: unknown; etag?: string }[]) {
      const id = String(e?.registrationId ?? '')
      try {
        if (mode === 'delete') await this.deleteEnrollment(id, e.etag)
        else if (mode === 'ifMatch') await this.putEnrollment(e, { mode: 'update', ifMatch: e.etag ?? '' })
        else await this.putEnrollment(e, { mode })
      } catch (err) {
        const w = toDpsWireError(err, '')
        errors.push({ registrationId: id, errorCode: w.body.errorCode, errorStatus: w.body.message })
      }
    }
    return { isSuccessful: errors.length === 0, errors }
  }

  async deleteEnrollment(id: string, ifMatch?: string): Promise<void> {
    await this.deleteDoc('enrollment', id, ifMatch)
  }

  async deleteEnrollmentGroup(id: string, ifMatch?: string): Promise<void> {
    await this.deleteDoc('enrollmentGroup', id, ifMatch)
  }

  private async deleteDoc(kind: DpsDocKind, id: string, ifMatch?: string): Promise<void> {
    const what = kind === 'registration' ? 'registration' : label(kind)
    const old = (await this.ctx.store.getDpsDoc(kind, key(id))) as { etag?: string } | undefined
    if (!old) throw notFound(what, id, kind === 'registration' ? 404202 : 404201)
    const m = unquote(ifMatch)
    if (m && m !== '*' && m !== old.etag) throw new PreconditionFailedError(`etag "${m}" does not match the ${what}'s current etag "${old.etag ?? ''}"`)
    await this.ctx.store.deleteDpsDoc(kind, key(id))
  }

  // ---- registration states ----

  private async findRegistration(id: string): Promise<DeviceRegistrationState | undefined> {
    return (await this.ctx.store.getDpsDoc('registration', key(id))) as DeviceRegistrationState | undefined
  }

  async getRegistration(id: string): Promise<DeviceRegistrationState> {
    const r = await this.findRegistration(id)
    if (!r) throw notFound('registration', id, 404202)
    return r
  }

  /** Every registration state, or those of one enrollment group. */
  async listRegistrations(groupId?: string): Promise<DeviceRegistrationState[]> {
    const all = (await this.ctx.store.listDpsDocs('registration')) as DeviceRegistrationState[]
    if (groupId === undefined) return all
    await this.getEnrollmentGroup(groupId)
    const g = groupId.toLowerCase()
    return all.filter((r) => (r.symmetricKey?.enrollmentGroupId ?? r.x509?.enrollmentGroupId)?.toLowerCase() === g)
  }

  async deleteRegistration(id: string, ifMatch?: string): Promise<void> {
    await this.deleteDoc('registration', id, ifMatch)
  }

  // ---- keys and connection strings ----

  /** compute-device-key with the group key given: no hub needed. */
  static async deviceKey(groupKey: string, registrationId: string): Promise<string> {
    validateRegistrationId(registrationId)
    return deriveDeviceKey(groupKey, registrationId)
  }

  /** `enrollment-group compute-device-key`: from a group's stored key, or from a key given offline. */
  async computeDeviceKey(registrationId: string, from: { groupId?: string; key?: string }): Promise<string> {
    validateRegistrationId(registrationId)
    if (from.key) return deriveDeviceKey(from.key, registrationId)
    if (!from.groupId) throw new UsageError('give the enrollment group (--group-id) or its key (--key)')
    const g = await this.getEnrollmentGroup(from.groupId)
    if (g.attestation.type !== 'symmetricKey' || !g.attestation.symmetricKey) throw new UsageError(`enrollment group "${from.groupId}" does not use symmetric keys`)
    return deriveDeviceKey(g.attestation.symmetricKey.primaryKey, registrationId)
  }

  /** `HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=…` (the service SDK dials 443 there). */
  connectionString(opts: { policy?: string; keyType?: 'primary' | 'secondary'; hostName?: string } = {}): string {
    const name = opts.policy ?? DPS_OWNER_POLICY
    const p = dpsPolicy(this.settings, name)
    if (!p) throw new NotFoundError(`no DPS shared access policy "${name}"`, `the DPS has "${DPS_OWNER_POLICY}"`)
    const k = opts.keyType === 'secondary' ? p.secondaryKey : p.primaryKey
    return `HostName=${opts.hostName ?? DPS_SERVICE_HOST};SharedAccessKeyName=${p.name};SharedAccessKey=${k}`
  }

  /** az `--login <DPS connection string>`: one of this DPS's policies with its key (the host is not checked: DPS host names vary). */
  checkLogin(login: string): void {
    const hint = 'pass the string `edgemq dps connection-string show` prints'
    const f = connectionStringFields(login)
    if (!f.get('hostname') || !f.has('sharedaccesskeyname')) throw new UsageError('--login is not a DPS connection string (HostName=…;SharedAccessKeyName=…;SharedAccessKey=…)', hint)
    checkPolicyKey(f, this.settings.policies, 'this DPS', hint)
  }

  /** `dps connection-string show --all`: one string per policy. */
  connectionStrings(opts: { keyType?: 'primary' | 'secondary'; hostName?: string } = {}): string[] {
    return this.settings.policies.map((p) => this.connectionString({ ...opts, policy: p.name }))
  }

  /** Verifies a service SAS token (DPS REST API): a DPS policy's key, scoped to the host it was sent to. */
  verifyServiceToken(header: string | undefined, hosts: string[]): void {
    if (!header) throw unauthorized('no Authorization header (a SAS token signed with a DPS policy, e.g. provisioningserviceowner, is required)')
    let fields
    try {
      fields = parseSasToken(header)
    } catch (err) {
      throw unauthorized((err as Error).message)
    }
    const p = dpsPolicy(this.settings, fields.skn ?? '')
    if (!p) throw unauthorized(`unknown DPS shared access policy "${fields.skn ?? ''}"`)
    const r = verifySasToken(fields, [p.primaryKey, p.secondaryKey], { acceptedResources: hosts })
    if (!r.ok) throw unauthorized(r.reason)
  }

  /** A registration SAS token, as a device SDK builds it (for tests and the docs). */
  registrationSas(registrationId: string, deviceKey: string, durationSecs = 3600): string {
    return buildSasToken({ resource: registrationResource(this.idScope, registrationId), key: deviceKey, durationSecs, policyName: 'registration' })
  }

  // ---- attestation ----

  /**
   * Who the device is: its individual enrollment first (a disabled one refuses, whatever groups
   * exist, as DPS does), else the first enabled group its proof fits. Every failure is 401002
   * without saying which enrollments exist.
   */
  async attest(input: AttestationInput): Promise<Attested> {
    const regId = input.registrationId
    if (input.idScope !== this.idScope) throw unauthorized(`id scope "${input.idScope}" is not this DPS's "${this.idScope}"`)
    validateRegistrationId(regId)
    const individual = (await this.ctx.store.getDpsDoc('enrollment', key(regId))) as IndividualEnrollment | undefined
    if (individual) {
      if (individual.provisioningStatus !== 'enabled') throw unauthorized(`enrollment "${regId}" is disabled`)
      const fail = this.check(individual, input, false)
      if (fail) throw unauthorized(fail)
      return { registrationId: regId, enrollment: individual, group: false, method: individual.attestation.type as Attested['method'] }
    }
    const groups = (await this.ctx.store.listDpsDocs('enrollmentGroup')) as EnrollmentGroup[]
    const reasons: string[] = []
    for (const g of groups) {
      const fail = this.check(g, input, true)
      if (fail) {
        reasons.push(fail)
        continue
      }
      if (g.provisioningStatus !== 'enabled') throw unauthorized(`enrollment group "${g.enrollmentGroupId}" is disabled`)
      return { registrationId: regId, enrollment: g, group: true, method: g.attestation.type as Attested['method'] }
    }
    throw unauthorized(groups.length === 0 ? `no enrollment for registration "${regId}"` : `no enrollment for registration "${regId}" accepts its credentials`)
  }

  /** Why `input` does not prove itself to this enrollment (undefined: it does). */
  private check(e: IndividualEnrollment | EnrollmentGroup, input: AttestationInput, group: boolean): string | undefined {
    const a = e.attestation
    if (a.type === 'symmetricKey' && a.symmetricKey) {
      if (!input.sas) return 'no SAS token sent (symmetric key attestation signs one with the device key)'
      let fields
      try {
        fields = parseSasToken(input.sas)
      } catch (err) {
        return `malformed SAS token: ${(err as Error).message}`
      }
      const keys = group ? [a.symmetricKey.primaryKey, a.symmetricKey.secondaryKey].map((k) => deriveDeviceKey(k, input.registrationId)) : [a.symmetricKey.primaryKey, a.symmetricKey.secondaryKey]
      const r = verifySasToken(fields, keys, { acceptedResources: [registrationResource(this.idScope, input.registrationId)], now: input.now })
      return r.ok ? undefined : r.reason
    }
    if (a.type === 'x509' && a.x509) {
      if (!input.certDer) return 'no TLS client certificate sent (X.509 attestation)'
      if (!group) {
        const c = a.x509.clientCertificates as X509Certificates
        return certMatchesThumbprint(input.certDer, [c.primary?.info?.sha256Thumbprint, c.secondary?.info?.sha256Thumbprint]) ? undefined : 'client certificate matches neither enrolled certificate'
      }
      const cas = this.groupCas(a.x509.signingCertificates ?? undefined)
      for (const ca of cas) {
        const v = verifyClientCertAgainstCa(input.certDer, ca)
        if (!v.ok) continue
        return v.commonName === input.registrationId ? undefined : `client certificate CN "${v.commonName}" is not the registration id "${input.registrationId}"`
      }
      return 'client certificate does not chain to the enrollment group\'s certificate'
    }
    return `attestation ${a.type} is not supported`
  }

  /** The CA a group's devices chain to: its signing certificates, else the hub CA (caReferences). */
  private groupCas(signing: X509Certificates | undefined): string[] {
    if (signing) return [signing.primary?.certificate, signing.secondary?.certificate].filter((c): c is string => typeof c === 'string')
    return this.hubCaPem ? [this.hubCaPem] : []
  }

  /** Set by the broker: the hub CA, which `caReferences` name. */
  hubCaPem?: string

  // ---- allocation ----

  /**
   * Assigns the device to this hub: creates or updates its identity (credentials, IoT Edge,
   * parent) and applies the initial twin as the reprovision policy says, then records the
   * registration state (new etag each time).
   */
  async allocate(a: Attested, writeTwin: TwinWriter, payload?: unknown): Promise<DeviceRegistrationState> {
    const e = a.enrollment
    const deviceId = (!a.group && (e as IndividualEnrollment).deviceId) || a.registrationId
    const prev = await this.findRegistration(a.registrationId)
    const policy = e.reprovisionPolicy
    const existing = await this.ctx.store.getDevice(deviceId)
    const t = new Date().toISOString()
    let substatus: DeviceRegistrationState['substatus'] = 'initialAssignment'
    let resetTwin = true
    if (prev && prev.status === 'assigned' && existing) {
      if (!policy.updateHubAssignment) {
        substatus = prev.substatus
        resetTwin = false
      } else if (policy.migrateDeviceData) {
        substatus = 'deviceDataMigrated'
        resetTwin = false
      } else {
        substatus = 'deviceDataReset'
      }
    }
    if (policy.updateHubAssignment || !existing) await this.upsertDevice(deviceId, a, existing)
    const { tags, properties } = e.initialTwin
    const replace = prev !== undefined && existing !== undefined
    if (resetTwin && (replace || Object.keys(tags).length > 0 || Object.keys(properties.desired).length > 0)) {
      // A first assignment merges the initial twin in; a reset (reprovision without migration) replaces tags and desired with it.
      await writeTwin({ deviceId }, { tags, desired: properties.desired }, replace)
    }
    const groupId = a.group ? (e as EnrollmentGroup).enrollmentGroupId : undefined
    const state: DeviceRegistrationState = {
      registrationId: a.registrationId,
      createdDateTimeUtc: prev?.createdDateTimeUtc ?? t,
      assignedHub: this.settings.assignedHub,
      deviceId,
      status: 'assigned',
      substatus,
      lastUpdatedDateTimeUtc: t,
      etag: newEtag(),
      ...(a.method === 'symmetricKey' ? { symmetricKey: groupId ? { enrollmentGroupId: groupId } : {} } : { x509: groupId ? { enrollmentGroupId: groupId } : {} }),
      ...(payload !== undefined ? { payload } : {}),
    }
    await this.ctx.store.putDpsDoc('registration', key(a.registrationId), state)
    return state
  }

  private async upsertDevice(deviceId: string, a: Attested, existing: DeviceRecord | undefined): Promise<void> {
    const e = a.enrollment
    const att = e.attestation
    const creds =
      att.type === 'symmetricKey' && att.symmetricKey
        ? {
            auth: 'sas' as const,
            primaryKey: a.group ? deriveDeviceKey(att.symmetricKey.primaryKey, a.registrationId) : att.symmetricKey.primaryKey,
            secondaryKey: a.group ? deriveDeviceKey(att.symmetricKey.secondaryKey, a.registrationId) : att.symmetricKey.secondaryKey,
          }
        : a.group
          ? { auth: 'certificateAuthority' as const }
          : {
              auth: 'selfSigned' as const,
              primaryThumbprint: att.x509?.clientCertificates?.primary?.info?.sha1Thumbprint,
              ...(att.x509?.clientCertificates?.secondary?.info ? { secondaryThumbprint: att.x509.clientCertificates.secondary.info.sha1Thumbprint } : {}),
            }
    const { registry } = this.ctx
    if (existing && existing.authType !== creds.auth) {
      // DPS re-creates an identity whose attestation changed kind; the registry cannot change an auth type in place.
      await registry.deleteDevice(deviceId)
      existing = undefined
    }
    if (!existing) {
      await registry.createDevice({ deviceId, ...creds, edge: e.capabilities.iotEdge, ...(e.parentDeviceId ? { parentId: e.parentDeviceId } : {}) })
      return
    }
    const { auth: _auth, ...keys } = creds
    await registry.updateDevice(deviceId, { ...keys, edge: e.capabilities.iotEdge, status: 'enabled', ...(e.parentDeviceId ? { parentId: e.parentDeviceId } : {}) })
  }

  /** A new operation id, shaped like DPS's (`4.<hex>.<hex>`). */
  static operationId(): string {
    return `4.${randomBytes(8).toString('hex')}.${randomBytes(16).toString('hex')}`
  }
}
