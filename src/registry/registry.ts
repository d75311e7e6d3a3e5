/**
 * The registry's business rules over a Store: id validation, key generation, parent/edge
 * rules, status. CLI commands, the broker and the REST API all go through this class.
 */
import { randomBytes } from 'node:crypto'

import { NotFoundError, PreconditionFailedError, UsageError } from '../errors.js'
import { buildSasToken, deviceResource } from '../sas/index.js'
import { newEtag } from './twin-record.js'
import type { AuthType, DeviceRecord, HubRecord, IdentityStatus, ModuleRecord, Store, UpstreamSettings } from './types.js'
import { normalizeThumbprintInput, validateDeviceId, validateKey, validateModuleId } from './validate.js'

export function generateKey(): string {
  return randomBytes(32).toString('base64')
}

/**
 * IoT Hub generation ids are 18-digit numbers; a new one per (re)creation. Cryptographically
 * random: the workload API signs for whoever names a module's generation id.
 */
function generationId(): string {
  // 64 random bits reduced to 18 digits (the first non-zero, so the length is fixed).
  const n = randomBytes(8).readBigUInt64BE() % 900_000_000_000_000_000n
  return (n + 100_000_000_000_000_000n).toString()
}

function now(): string {
  return new Date().toISOString()
}

export interface CreateDeviceInput {
  deviceId: string
  edge?: boolean
  parentId?: string
  auth?: AuthType
  primaryKey?: string
  secondaryKey?: string
  primaryThumbprint?: string
  secondaryThumbprint?: string
  status?: IdentityStatus
  statusReason?: string
}

export interface UpdateDeviceInput {
  status?: IdentityStatus
  statusReason?: string
  primaryKey?: string
  secondaryKey?: string
  primaryThumbprint?: string
  secondaryThumbprint?: string
  /** `null` removes the parent. */
  parentId?: string | null
  edge?: boolean
  etag?: string
  /** az `update --am`: a new authentication type; the old type's keys or thumbprints are dropped. */
  authType?: AuthType
}

export interface CreateModuleInput {
  deviceId: string
  moduleId: string
  auth?: AuthType
  primaryKey?: string
  secondaryKey?: string
  managedBy?: string
}

export interface UpdateModuleInput {
  primaryKey?: string
  secondaryKey?: string
  managedBy?: string
  /** If-Match: the module's current etag, or '*'. */
  etag?: string
}

export type Identity = { device: DeviceRecord; module?: ModuleRecord }

function credentials(
  auth: AuthType,
  input: { primaryKey?: string; secondaryKey?: string; primaryThumbprint?: string; secondaryThumbprint?: string },
): Pick<DeviceRecord, 'primaryKey' | 'secondaryKey' | 'primaryThumbprint' | 'secondaryThumbprint'> {
  if (auth === 'sas') {
    if (input.primaryThumbprint || input.secondaryThumbprint) throw new UsageError('thumbprints only apply to --auth x509-thumbprint')
    if (input.primaryKey) validateKey(input.primaryKey, 'primary')
    if (input.secondaryKey) validateKey(input.secondaryKey, 'secondary')
    return { primaryKey: input.primaryKey ?? generateKey(), secondaryKey: input.secondaryKey ?? generateKey() }
  }
  if (input.primaryKey || input.secondaryKey) throw new UsageError('keys only apply to --auth sas')
  if (auth === 'selfSigned') {
    if (!input.primaryThumbprint) {
      throw new UsageError('--auth x509-thumbprint needs --primary-thumbprint', 'make a certificate and its thumbprints with `edgemq cert device --device <id> --self-signed`')
    }
    return {
      primaryThumbprint: normalizeThumbprintInput(input.primaryThumbprint, 'primary'),
      ...(input.secondaryThumbprint ? { secondaryThumbprint: normalizeThumbprintInput(input.secondaryThumbprint, 'secondary') } : {}),
    }
  }
  if (input.primaryThumbprint || input.secondaryThumbprint) throw new UsageError('thumbprints only apply to --auth x509-thumbprint')
  return {}
}

export class Registry {
  constructor(
    readonly store: Store,
    readonly hub: HubRecord,
  ) {}

  async createDevice(input: CreateDeviceInput): Promise<DeviceRecord> {
    validateDeviceId(input.deviceId)
    const auth = input.auth ?? 'sas'
    if (input.parentId !== undefined) await this.requireEdgeParent(input.parentId, input.deviceId)
    const t = now()
    const device: DeviceRecord = {
      deviceId: input.deviceId,
      authType: auth,
      ...credentials(auth, input),
      status: input.status ?? 'enabled',
      ...(input.statusReason ? { statusReason: input.statusReason } : {}),
      statusUpdatedAt: t,
      edge: input.edge ?? false,
      ...(input.parentId ? { parentId: input.parentId } : {}),
      generationId: generationId(),
      etag: newEtag(),
      createdAt: t,
      updatedAt: t,
    }
    await this.store.createDevice(device)
    if (device.edge) await this.ensureEdgeModules(device.deviceId)
    return device
  }

  /** IoT Edge devices always carry the two runtime modules; `$edgeHub`'s twin holds the policy. */
  async ensureEdgeModules(deviceId: string): Promise<void> {
    for (const moduleId of ['$edgeAgent', '$edgeHub']) {
      if (!(await this.store.getModule(deviceId, moduleId))) {
        await this.store.createModule(this.newModule({ deviceId, moduleId, managedBy: 'iotEdge' }, 'sas')).catch((err: unknown) => {
          // Another process created it first: fine.
          if (!(err instanceof Error && 'code' in err && (err as { code: string }).code === 'CONFLICT')) throw err
        })
      }
    }
  }

  private async requireEdgeParent(parentId: string, childId: string): Promise<void> {
    if (parentId === childId) throw new UsageError('a device cannot be its own parent')
    const parent = await this.store.getDevice(parentId)
    if (!parent) throw new NotFoundError(`parent device "${parentId}" not found`, 'create it with `edgemq device create ' + parentId + ' --edge`')
    if (!parent.edge) throw new UsageError(`parent device "${parentId}" is not an IoT Edge device`, 'only edge devices can be parents; create one with --edge')
  }

  async getDevice(deviceId: string): Promise<DeviceRecord> {
    const d = await this.store.getDevice(deviceId)
    if (!d) throw new NotFoundError(`device "${deviceId}" not found`, 'list devices with `edgemq device list`')
    return d
  }

  /** The device's parent edge device (for its `parentScopes`), if it has one that still exists. */
  async parentOf(device: DeviceRecord): Promise<DeviceRecord | undefined> {
    return device.parentId ? this.store.getDevice(device.parentId) : undefined
  }

  listDevices(): Promise<DeviceRecord[]> {
    return this.store.listDevices()
  }

  async updateDevice(deviceId: string, patch: UpdateDeviceInput): Promise<DeviceRecord> {
    const d = await this.getDevice(deviceId)
    if (patch.etag && patch.etag !== '*' && patch.etag !== d.etag) {
      throw new UsageError(`etag "${patch.etag}" does not match the device's current etag "${d.etag}"`, 'show the device again and retry with its etag')
    }
    if (patch.parentId) await this.requireEdgeParent(patch.parentId, deviceId)
    const authType = patch.authType ?? d.authType
    const switching = authType !== d.authType
    // az: a switch to SAS takes both keys or neither (then both are generated).
    if (switching && authType === 'sas' && !patch.primaryKey !== !patch.secondaryKey) {
      throw new UsageError('a switch to SAS authentication takes both --pk and --sk, or neither (both are generated)')
    }
    const { primaryKey, secondaryKey, primaryThumbprint, secondaryThumbprint, ...rest } = d
    const keys = credentials(authType, {
      primaryKey: patch.primaryKey ?? (switching ? undefined : primaryKey),
      secondaryKey: patch.secondaryKey ?? (switching ? undefined : secondaryKey),
      primaryThumbprint: patch.primaryThumbprint ?? (switching ? undefined : primaryThumbprint),
      secondaryThumbprint: patch.secondaryThumbprint ?? (switching ? undefined : secondaryThumbprint),
    })
    const t = now()
    const next: DeviceRecord = {
      ...rest,
      authType,
      ...keys,
      status: patch.status ?? d.status,
      statusReason: patch.statusReason ?? d.statusReason,
      statusUpdatedAt: patch.status && patch.status !== d.status ? t : d.statusUpdatedAt,
      edge: patch.edge ?? d.edge,
      etag: newEtag(),
      updatedAt: t,
    }
    if (patch.parentId === null) delete next.parentId
    else if (patch.parentId) next.parentId = patch.parentId
    await this.store.putDevice(next)
    if (next.edge && !d.edge) await this.ensureEdgeModules(deviceId)
    return next
  }

  /** `etag` (az `delete --etag`): only while the device still has it ('*' = any). */
  async deleteDevice(deviceId: string, opts: { etag?: string } = {}): Promise<void> {
    if (opts.etag && opts.etag !== '*') {
      const d = await this.getDevice(deviceId)
      if (opts.etag !== d.etag) throw new PreconditionFailedError(`etag "${opts.etag}" does not match the device's current etag "${d.etag}"`, 'show the device again and retry with its etag')
    }
    if (deviceId === this.hub.edgeDeviceId) {
      throw new UsageError(`"${deviceId}" is this hub's edge device and cannot be deleted`, 're-create the hub with `edgemq hub init --force` instead')
    }
    if (!(await this.store.deleteDevice(deviceId))) throw new NotFoundError(`device "${deviceId}" not found`)
  }

  private newModule(input: CreateModuleInput, auth: AuthType): ModuleRecord {
    const t = now()
    return {
      deviceId: input.deviceId,
      moduleId: input.moduleId,
      authType: auth,
      ...credentials(auth, input),
      ...(input.managedBy ? { managedBy: input.managedBy } : {}),
      generationId: generationId(),
      etag: newEtag(),
      createdAt: t,
      updatedAt: t,
    }
  }

  async createModule(input: CreateModuleInput): Promise<ModuleRecord> {
    validateDeviceId(input.deviceId)
    validateModuleId(input.moduleId)
    // PROTOCOL.md §1: modules authenticate with SAS only.
    if (input.auth && input.auth !== 'sas') throw new UsageError('modules authenticate with SAS keys only (as in IoT Edge)')
    const m = this.newModule(input, 'sas')
    await this.store.createModule(m)
    return m
  }

  async getModule(deviceId: string, moduleId: string): Promise<ModuleRecord> {
    const m = await this.store.getModule(deviceId, moduleId)
    if (!m) {
      await this.getDevice(deviceId)
      throw new NotFoundError(`module "${moduleId}" not found on device "${deviceId}"`, `list them with \`edgemq module list --device ${deviceId}\``)
    }
    return m
  }

  async listModules(deviceId: string): Promise<ModuleRecord[]> {
    await this.getDevice(deviceId)
    return this.store.listModules(deviceId)
  }

  /** New keys (validated) and/or `managedBy`; a new etag. */
  async updateModule(deviceId: string, moduleId: string, patch: UpdateModuleInput): Promise<ModuleRecord> {
    const m = await this.getModule(deviceId, moduleId)
    if (patch.etag && patch.etag !== '*' && patch.etag !== m.etag) {
      throw new UsageError(`etag "${patch.etag}" does not match the module's current etag "${m.etag}"`, 'show the module again and retry with its etag')
    }
    const next: ModuleRecord = {
      ...m,
      ...credentials('sas', { primaryKey: patch.primaryKey ?? m.primaryKey, secondaryKey: patch.secondaryKey ?? m.secondaryKey }),
      ...(patch.managedBy ? { managedBy: patch.managedBy } : {}),
      etag: newEtag(),
      updatedAt: now(),
    }
    await this.store.putModule(next)
    return next
  }

  /** The parent hub that `$upstream` means (nested edge), or none (`null`). A running broker picks it up from the store. */
  async setUpstream(upstream: UpstreamSettings | null): Promise<HubRecord> {
    return this.store.updateHub((h) => {
      const { upstream: _old, ...rest } = h
      return upstream ? { ...rest, upstream } : rest
    })
  }

  /** `etag` (az `module-identity delete --etag`): only while the module still has it ('*' = any). */
  async deleteModule(deviceId: string, moduleId: string, opts: { etag?: string } = {}): Promise<void> {
    if (opts.etag && opts.etag !== '*') {
      const m = await this.getModule(deviceId, moduleId)
      if (opts.etag !== m.etag) throw new PreconditionFailedError(`etag "${opts.etag}" does not match the module's current etag "${m.etag}"`, 'show the module again and retry with its etag')
    }
    if (!(await this.store.deleteModule(deviceId, moduleId))) {
      await this.getDevice(deviceId)
      throw new NotFoundError(`module "${moduleId}" not found on device "${deviceId}"`)
    }
  }

  /** The device, and the module when `moduleId` is given; throws NotFound. */
  async identity(deviceId: string, moduleId?: string): Promise<Identity> {
    const device = await this.getDevice(deviceId)
    return moduleId ? { device, module: await this.getModule(deviceId, moduleId) } : { device }
  }

  /** A SAS token for a device or module, signed with its own key (az generate-sas-token). */
  async sasToken(deviceId: string, moduleId: string | undefined, opts: { durationSecs?: number; expiry?: number; keyType?: 'primary' | 'secondary' } = {}): Promise<string> {
    const { device, module } = await this.identity(deviceId, moduleId)
    const rec = module ?? device
    const key = opts.keyType === 'secondary' ? rec.secondaryKey : rec.primaryKey
    if (!key) {
      throw new UsageError(`${moduleId ? 'module' : 'device'} "${moduleId ?? deviceId}" uses X.509 authentication and has no keys`, 'connect it with its certificate (`edgemq cert device`)')
    }
    return buildSasToken({ resource: deviceResource(this.hub.hostName, deviceId, moduleId), key, durationSecs: opts.durationSecs, expiry: opts.expiry })
  }

  /** A service token for a shared access policy (default iothubowner). */
  serviceSasToken(opts: { policy?: string; durationSecs?: number; expiry?: number; keyType?: 'primary' | 'secondary'; resource?: string } = {}): string {
    const p = this.policy(opts.policy)
    return buildSasToken({
      resource: opts.resource ?? this.hub.hostName,
      key: opts.keyType === 'secondary' ? p.secondaryKey : p.primaryKey,
      policyName: p.name,
      durationSecs: opts.durationSecs,
      expiry: opts.expiry,
    })
  }

  policy(name = 'iothubowner') {
    const p = this.hub.policies.find((x) => x.name === name)
    if (!p) throw new NotFoundError(`shared access policy "${name}" not found`, `policies: ${this.hub.policies.map((x) => x.name).join(', ')}`)
    return p
  }

  async connectionString(deviceId: string, moduleId?: string, opts: { gateway?: string; keyType?: 'primary' | 'secondary' } = {}): Promise<string> {
    const { device, module } = await this.identity(deviceId, moduleId)
    const rec = module ?? device
    const parts = [`HostName=${this.hub.hostName}`, `DeviceId=${deviceId}`]
    if (moduleId) parts.push(`ModuleId=${moduleId}`)
    if (rec.authType === 'sas') parts.push(`SharedAccessKey=${opts.keyType === 'secondary' ? rec.secondaryKey : rec.primaryKey}`)
    else parts.push('x509=true')
    if (opts.gateway) parts.push(`GatewayHostName=${opts.gateway}`)
    return parts.join(';')
  }

  serviceConnectionString(opts: { policy?: string; gateway?: string; keyType?: 'primary' | 'secondary' } = {}): string {
    const p = this.policy(opts.policy)
    return `HostName=${opts.gateway ?? this.hub.hostName};SharedAccessKeyName=${p.name};SharedAccessKey=${opts.keyType === 'secondary' ? p.secondaryKey : p.primaryKey}`
  }
}
