/**
 * az's identity operations beyond create/show/delete (azext_iot/operations/hub.py): key renewal
 * (`renew-key --kt primary|secondary|swap`), parent/children of IoT Edge devices, and az's generic
 * update (`update --set path=value`). Each returns what az prints.
 */
import { statSync } from 'node:fs'

import { makeDeviceCert, type DeviceCertResult } from '../cert/index.js'
import type { HubContext } from '../config/home.js'
import { ConflictError, NotFoundError, UsageError } from '../errors.js'
import { queryAll } from '../query/index.js'
import { generateKey, type UpdateDeviceInput, type UpdateModuleInput } from '../registry/registry.js'
import type { DeviceRecord, ModuleRecord } from '../registry/types.js'
import { deviceScope, deviceView, moduleView } from '../registry/views.js'
import { twinQuerySource } from './twin-view.js'

type Ctx = Pick<HubContext, 'registry' | 'store'>

export type RenewKeyType = 'primary' | 'secondary' | 'swap'

function keysFor(rec: DeviceRecord | ModuleRecord, type: RenewKeyType, what: string): { primaryKey?: string; secondaryKey?: string } {
  if (rec.authType !== 'sas') throw new UsageError(`${what} authenticates with ${rec.authType}, not sas: it has no keys to renew`)
  if (type === 'swap') return { primaryKey: rec.secondaryKey, secondaryKey: rec.primaryKey }
  return type === 'primary' ? { primaryKey: generateKey() } : { secondaryKey: generateKey() }
}

async function deviceJson(ctx: Ctx, d: DeviceRecord) {
  return deviceView(d, await ctx.registry.parentOf(d))
}

/** One renew-key run over devices or modules: `*` = every SAS one, swap on one only (as az). */
async function renew<T extends DeviceRecord | ModuleRecord>(
  ids: string[],
  type: RenewKeyType,
  kind: 'device' | 'module',
  io: { all(): Promise<T[]>; get(id: string): Promise<T>; update(rec: T, keys: { primaryKey?: string; secondaryKey?: string }): Promise<T>; idOf(rec: T): string },
): Promise<{ one?: T; done: T[] }> {
  if (ids.length === 0) throw new UsageError(`renew-key needs ${kind === 'device' ? '-d <device id>' : '-m <module id>'} (several, or * for all)`)
  const all = ids.length === 1 && ids[0] === '*'
  if (type === 'swap' && (all || ids.length > 1)) throw new UsageError(`bulk key swap is not supported (as az): name one ${kind}`)
  const targets = all ? (await io.all()).filter((r) => r.authType === 'sas') : await Promise.all(ids.map((id) => io.get(id)))
  const done: T[] = []
  for (const rec of targets) done.push(await io.update(rec, keysFor(rec, type, `${kind} "${io.idOf(rec)}"`)))
  return { ...(!all && done.length === 1 ? { one: done[0] } : {}), done }
}

/** az's bulk renew-key result (the service's BulkRegenerateKeyResult). */
export interface BulkRenewResult {
  policyKey: 'primaryKey' | 'secondaryKey'
  errors: unknown[]
  rotatedKeys: { id: string; moduleId?: string; primaryKey?: string; secondaryKey?: string }[]
}

function bulkResult(type: RenewKeyType, done: (DeviceRecord | ModuleRecord)[]): BulkRenewResult {
  return {
    policyKey: type === 'secondary' ? 'secondaryKey' : 'primaryKey',
    errors: [],
    rotatedKeys: done.map((r) => ({ id: r.deviceId, ...('moduleId' in r ? { moduleId: r.moduleId } : {}), primaryKey: r.primaryKey, secondaryKey: r.secondaryKey })),
  }
}

/**
 * az `device-identity renew-key -d <ids…|*> --kt [--im]`: one device → its identity; several (or
 * `*`, the SAS devices), or `--include-modules` (the SAS modules of those devices too; with `*`, of
 * every device, as az) → az's bulk result. Swap works on one device only and ignores --im (as az).
 */
export async function renewDeviceKeys(ctx: Ctx, deviceIds: string[], type: RenewKeyType, opts: { etag?: string; includeModules?: boolean } = {}) {
  const r = await renew<DeviceRecord>(deviceIds, type, 'device', {
    all: () => ctx.registry.listDevices(),
    get: (id) => ctx.registry.getDevice(id),
    update: (d, keys) => ctx.registry.updateDevice(d.deviceId, { ...keys, etag: opts.etag }),
    idOf: (d) => d.deviceId,
  })
  if (r.one && (!opts.includeModules || type === 'swap')) return deviceJson(ctx, r.one)
  const modules: ModuleRecord[] = []
  if (opts.includeModules) {
    const owners = deviceIds[0] === '*' ? (await ctx.registry.listDevices()).map((d) => d.deviceId) : deviceIds
    for (const deviceId of owners) modules.push(...(await renewModules(ctx, deviceId, ['*'], type, {})).done)
  }
  return bulkResult(type, [...r.done, ...modules])
}

function renewModules(ctx: Ctx, deviceId: string, moduleIds: string[], type: RenewKeyType, opts: { etag?: string }) {
  return renew<ModuleRecord>(moduleIds, type, 'module', {
    all: () => ctx.registry.listModules(deviceId),
    get: (id) => ctx.registry.getModule(deviceId, id),
    update: (m, keys) => ctx.registry.updateModule(deviceId, m.moduleId, { ...keys, etag: opts.etag }),
    idOf: (m) => m.moduleId,
  })
}

/** az `module-identity renew-key -d <device> -m <ids…|*> --kt`: one module → its identity; several → az's bulk result. */
export async function renewModuleKeys(ctx: Ctx, deviceId: string, moduleIds: string[], type: RenewKeyType, opts: { etag?: string } = {}) {
  const r = await renewModules(ctx, deviceId, moduleIds, type, opts)
  return r.one ? moduleView(r.one) : bulkResult(type, r.done)
}

async function edgeDevice(ctx: Ctx, deviceId: string): Promise<DeviceRecord> {
  const d = await ctx.registry.getDevice(deviceId)
  if (!d.edge) throw new UsageError(`device "${deviceId}" is not an IoT Edge device`, `make it one with \`edgemq device update ${deviceId} --ee true\``)
  return d
}

function checkReparent(child: DeviceRecord, parentId: string, force: boolean): void {
  if (child.parentId && child.parentId !== parentId && !force) {
    throw new ConflictError(`device "${child.deviceId}" already has parent "${child.parentId}"`, 'pass --force to overwrite it')
  }
}

/** az `device-identity children list -d <edge>`: the child ids (az runs a query on parentScopes). */
export async function listChildren(ctx: Ctx, edgeId: string): Promise<string[]> {
  const edge = await edgeDevice(ctx, edgeId)
  const rows = await queryAll(twinQuerySource(ctx), `SELECT deviceId FROM devices WHERE ARRAY_CONTAINS(parentScopes, '${deviceScope(edge)}')`)
  return rows.map((r) => String(r.deviceId))
}

/** az `device-identity children add -d <edge> --cl <ids…> [-f]`. */
export async function addChildren(ctx: Ctx, edgeId: string, childIds: string[], opts: { force?: boolean } = {}): Promise<void> {
  await edgeDevice(ctx, edgeId)
  if (childIds.length === 0) throw new UsageError('children add needs --child-list <ids>')
  const children = await Promise.all(childIds.map((id) => ctx.registry.getDevice(id)))
  // Check them all before changing any, as az does.
  for (const c of children) checkReparent(c, edgeId, opts.force === true)
  for (const c of children) await ctx.registry.updateDevice(c.deviceId, { parentId: edgeId })
}

/** az `device-identity children remove -d <edge> (--cl <ids…> | -a)`. */
export async function removeChildren(ctx: Ctx, edgeId: string, opts: { childIds?: string[]; all?: boolean }): Promise<void> {
  let ids: string[]
  if (opts.all) {
    ids = await listChildren(ctx, edgeId)
    if (ids.length === 0) throw new UsageError(`edge device "${edgeId}" has no children`)
  } else if (opts.childIds && opts.childIds.length > 0) {
    await edgeDevice(ctx, edgeId)
    ids = opts.childIds
    for (const id of ids) {
      const c = await ctx.registry.getDevice(id)
      if (c.parentId !== edgeId) throw new UsageError(`device "${id}" is not a child of edge device "${edgeId}"`)
    }
  } else {
    throw new UsageError('say which children: --child-list <ids>, or --remove-all')
  }
  for (const id of ids) await ctx.registry.updateDevice(id, { parentId: null })
}

/** az `device-identity parent show -d <child>`: the parent's identity. */
export async function showParent(ctx: Ctx, deviceId: string) {
  const child = await ctx.registry.getDevice(deviceId)
  if (!child.parentId) throw new UsageError(`device "${deviceId}" has no parent device`, `set one with \`edgemq device parent set -d ${deviceId} --pd <edge device>\``)
  return deviceJson(ctx, await ctx.registry.getDevice(child.parentId))
}

/** az `device-identity parent set -d <child> --pd <edge> [-f]`. */
export async function setParent(ctx: Ctx, deviceId: string, parentId: string, opts: { force?: boolean } = {}): Promise<void> {
  await edgeDevice(ctx, parentId)
  const child = await ctx.registry.getDevice(deviceId)
  checkReparent(child, parentId, opts.force === true)
  await ctx.registry.updateDevice(deviceId, { parentId })
}

/** `--device-scope ms-azure-iot-edge://<id>-<generation>` (az create/update) → that edge device's id. */
export async function parentFromScope(ctx: Ctx, scope: string): Promise<string> {
  for (const d of await ctx.registry.listDevices()) if (d.edge && deviceScope(d) === scope) return d.deviceId
  throw new UsageError(`no IoT Edge device has device scope "${scope}"`, 'take it from `edgemq device show <edge device>` (deviceScope)')
}

/** `base` with every defined member of `over` on top (flags win over --set; unset flags change nothing). */
export function mergeDefined<T extends object>(base: T, over: T): T {
  const out = { ...base }
  for (const [k, v] of Object.entries(over)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}

function parseSets(sets: string[]): [string, string][] {
  return sets.map((s) => {
    const eq = s.indexOf('=')
    if (eq <= 0) throw new UsageError(`--set "${s}" is not path=value`)
    return [s.slice(0, eq).trim(), s.slice(eq + 1)]
  })
}

function bool(path: string, v: string): boolean {
  if (/^true$/i.test(v)) return true
  if (/^false$/i.test(v)) return false
  throw new UsageError(`--set ${path}: "${v}" is not true or false`)
}

/** The device paths az's generic `update --set` can change here. */
const DEVICE_SET_PATHS = ['status', 'statusReason', 'capabilities.iotEdge', 'authentication.symmetricKey.primaryKey', 'authentication.symmetricKey.secondaryKey', 'authentication.x509Thumbprint.primaryThumbprint', 'authentication.x509Thumbprint.secondaryThumbprint']

/** az's generic update (`--set status=disabled --set capabilities.iotEdge=true`) as a registry update. */
export function deviceSetPatch(sets: string[]): UpdateDeviceInput {
  const patch: UpdateDeviceInput = {}
  for (const [path, v] of parseSets(sets)) {
    switch (path) {
      case 'status':
        if (v !== 'enabled' && v !== 'disabled') throw new UsageError(`--set status: "${v}" is not enabled or disabled`)
        patch.status = v
        break
      case 'statusReason':
        patch.statusReason = v
        break
      case 'capabilities.iotEdge':
        patch.edge = bool(path, v)
        break
      case 'authentication.symmetricKey.primaryKey':
        patch.primaryKey = v
        break
      case 'authentication.symmetricKey.secondaryKey':
        patch.secondaryKey = v
        break
      case 'authentication.x509Thumbprint.primaryThumbprint':
        patch.primaryThumbprint = v
        break
      case 'authentication.x509Thumbprint.secondaryThumbprint':
        patch.secondaryThumbprint = v
        break
      default:
        throw new UsageError(`--set ${path}: not a property edgemq can update`, `settable: ${DEVICE_SET_PATHS.join(', ')}`)
    }
  }
  return patch
}

const MODULE_SET_PATHS = ['authentication.symmetricKey.primaryKey', 'authentication.symmetricKey.secondaryKey', 'managedBy']

/** az's generic `module-identity update --set …` as a registry update. */
export function moduleSetPatch(sets: string[]): UpdateModuleInput {
  const patch: UpdateModuleInput = {}
  for (const [path, v] of parseSets(sets)) {
    if (path === 'authentication.symmetricKey.primaryKey') patch.primaryKey = v
    else if (path === 'authentication.symmetricKey.secondaryKey') patch.secondaryKey = v
    else if (path === 'managedBy') patch.managedBy = v
    else throw new UsageError(`--set ${path}: not a module property edgemq can update`, `settable: ${MODULE_SET_PATHS.join(', ')}`)
  }
  return patch
}

/** az generic update's value: JSON when it parses (`1`, `true`, `null`, `{"a":1}`, `"text"`), else the text as is. */
function jsonOrString(v: string): unknown {
  try {
    return JSON.parse(v) as unknown
  } catch {
    return v
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Set an own member even for the key `__proto__` (a valid twin property name, never the prototype). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

/**
 * az's generic `device-twin update` / `module-twin update --set tags.<path>=<value>` and
 * `--set properties.desired.<path>=<value>` applied onto the `--desired` / `--tags` patch (az applies
 * --set after them): values are JSON when they parse (`null` deletes the property), else strings;
 * `forceString` (az `--force-string`) keeps them strings.
 */
export function twinSetPatch(sets: string[], base: { desired?: unknown; tags?: unknown } = {}, opts: { forceString?: boolean } = {}): { desired?: unknown; tags?: unknown } {
  const out = { ...base }
  for (const [path, raw] of parseSets(sets)) {
    const m = /^(tags|properties\.desired)(?:\.(.+))?$/.exec(path)
    if (!m) throw new UsageError(`--set ${path}: a twin update sets tags[.<name>…] or properties.desired[.<name>…]`, 'e.g. --set properties.desired.interval=5 --set tags.site=lab')
    const section = m[1] === 'tags' ? 'tags' : 'desired'
    const value = opts.forceString ? raw : jsonOrString(raw)
    const keys = m[2]?.split('.') ?? []
    if (keys.some((k) => k === '')) throw new UsageError(`--set ${path}: empty property name`)
    if (keys.length === 0) {
      if (!isObject(value)) throw new UsageError(`--set ${path}: the value must be a JSON object`)
      out[section] = value
      continue
    }
    const current = out[section]
    const root: Record<string, unknown> = isObject(current) ? structuredClone(current) : {}
    let node = root
    for (const k of keys.slice(0, -1)) {
      const next = Object.prototype.hasOwnProperty.call(node, k) ? node[k] : undefined
      if (isObject(next)) node = next
      else {
        const created: Record<string, unknown> = {}
        setOwn(node, k, created)
        node = created
      }
    }
    setOwn(node, keys[keys.length - 1], value)
    out[section] = root
  }
  return out
}

/**
 * az `device-identity create --vd <days> [--od <dir>]`: a self-signed certificate whose thumbprint
 * becomes the device's primary thumbprint. az refuses an --od that does not exist; without --od the
 * files go to the home's certs folder (az would keep only the thumbprint).
 */
export async function selfSignedForCreate(ctx: HubContext, deviceId: string, opts: { days?: number; outDir?: string }): Promise<DeviceCertResult> {
  if (opts.outDir !== undefined && !isDir(opts.outDir)) throw new NotFoundError(`certificate output directory "${opts.outDir}" does not exist`)
  return makeDeviceCert(ctx, { deviceId, selfSigned: true, outDir: opts.outDir, days: opts.days ?? 365 })
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}
