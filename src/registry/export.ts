/**
 * `hub export` / `hub import`: the registry, its twins and the `$edgeHub` document as one JSON
 * file (test fixtures). Import also takes the array `az iot hub device-identity list` prints.
 *
 * Export format (`edgemqExport: 1`):
 *   { edgemqExport: 1, hub: { name, hostName, edgeDeviceId },
 *     devices: [ { ...az device JSON, tags?, properties: { desired, reported } ,
 *                  modules: [ { ...az module JSON, properties: {desired, reported} } ] } ],
 *     edgeHub: { <the $edgeHub desired document> } }
 * Keys, thumbprints, status, parents (`deviceScope`/`parentScopes`), tags and twins round-trip;
 * etags and generation ids are new, as for a re-created IoT Hub identity.
 */
import { InvalidDocumentError } from '../errors.js'
import type { HubContext } from '../config/home.js'
import { deviceView, moduleView } from './views.js'
import type { AuthType, IdentityStatus, TwinRecord } from './types.js'
import { etagFor } from '../twin/twin.js'
import { metadataFor } from '../twin/metadata.js'
import type { TwinObject } from '../twin/types.js'
import { writeFileAtomicSync } from '../util/fs.js'

export const EXPORT_VERSION = 1

type Json = Record<string, unknown>

interface ModuleJson extends Json {
  moduleId: string
  properties?: { desired?: Json; reported?: Json }
}

interface DeviceJson extends Json {
  deviceId: string
  modules?: ModuleJson[]
  tags?: Json
  properties?: { desired?: Json; reported?: Json }
}

export interface HubExport {
  edgemqExport: number
  exportedAt: string
  hub: { name: string; hostName: string; edgeDeviceId: string }
  devices: DeviceJson[]
  edgeHub: Json
}

export interface ImportResult {
  format: 'edgemq' | 'az-device-list'
  devices: { created: number; updated: number; skipped: number }
  modules: number
  twins: number
  edgeHub: boolean
  /** E.g. SAS devices that came without keys (az's device-identity list prints twins, which have none) and got new ones. */
  warnings: string[]
}

function strip(o: Json): Json {
  const out: Json = {}
  for (const [k, v] of Object.entries(o)) if (k !== '$version' && k !== '$metadata') out[k] = v
  return out
}

export async function exportHub(ctx: HubContext): Promise<HubExport> {
  const { store, hub } = ctx
  const devices = await store.listDevices()
  const byId = new Map(devices.map((d) => [d.deviceId, d]))
  const out: DeviceJson[] = []
  for (const d of devices) {
    const twin = await store.getTwin({ deviceId: d.deviceId })
    const modules: ModuleJson[] = []
    for (const m of await store.listModules(d.deviceId)) {
      const mt = await store.getTwin({ deviceId: d.deviceId, moduleId: m.moduleId })
      // $edgeHub's desired document is exported once, as `edgeHub`; its reported side is runtime state.
      const props = m.moduleId === '$edgeHub' && d.deviceId === hub.edgeDeviceId ? {} : { properties: { desired: mt?.desired ?? {}, reported: mt?.reported ?? {} } }
      modules.push({ ...moduleView(m), ...props })
    }
    out.push({
      ...deviceView(d, d.parentId ? byId.get(d.parentId) : undefined),
      ...(twin && Object.keys(twin.tags).length > 0 ? { tags: twin.tags } : {}),
      properties: { desired: twin?.desired ?? {}, reported: twin?.reported ?? {} },
      modules,
    })
  }
  const edgeHub = (await store.getTwin({ deviceId: hub.edgeDeviceId, moduleId: '$edgeHub' }))?.desired ?? {}
  return { edgemqExport: EXPORT_VERSION, exportedAt: new Date().toISOString(), hub: { name: hub.name, hostName: hub.hostName, edgeDeviceId: hub.edgeDeviceId }, devices: out, edgeHub }
}

function bad(message: string, path = ''): InvalidDocumentError {
  return new InvalidDocumentError(message, [{ path, message }])
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function optStr(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

const AUTH: Record<string, AuthType> = { sas: 'sas', selfSigned: 'selfSigned', certificateAuthority: 'certificateAuthority' }

function authOf(d: Json, path: string) {
  const a = isObj(d.authentication) ? d.authentication : {}
  // A twin (what `az iot hub device-identity list` prints) has authenticationType and x509Thumbprint at the top.
  const rawType = a.type ?? d.authenticationType
  const type = rawType === undefined || rawType === null ? 'sas' : AUTH[String(rawType)]
  if (!type) throw bad(`unknown authentication.type "${String(rawType)}"`, `${path}.authentication.type`)
  const sk = isObj(a.symmetricKey) ? a.symmetricKey : {}
  const tp = isObj(a.x509Thumbprint) ? a.x509Thumbprint : isObj(d.x509Thumbprint) ? d.x509Thumbprint : {}
  return {
    auth: type,
    ...(type === 'sas' ? { primaryKey: optStr(sk.primaryKey), secondaryKey: optStr(sk.secondaryKey) } : {}),
    ...(type === 'selfSigned' ? { primaryThumbprint: optStr(tp.primaryThumbprint), secondaryThumbprint: optStr(tp.secondaryThumbprint) } : {}),
  }
}

/**
 * Imports an export (or an az device list) into the hub. Existing devices are updated (keys, status,
 * parent, twins); the hub's own edge device is kept and its modules/twins merged.
 */
/** The export as `hub export` prints it: JSON, 2-space indented, with a final newline. */
export function exportJson(doc: HubExport): string {
  return JSON.stringify(doc, null, 2) + '\n'
}

/** Writes the hub's export to `file`: atomically, mode 0600 (it holds keys). */
export async function exportHubToFile(ctx: HubContext, file: string): Promise<{ file: string; devices: number }> {
  const doc = await exportHub(ctx)
  writeFileAtomicSync(file, exportJson(doc), 0o600)
  return { file, devices: doc.devices.length }
}

export async function importHub(ctx: HubContext, doc: unknown): Promise<ImportResult> {
  const { registry, store, hub } = ctx
  let devices: DeviceJson[]
  let edgeHub: Json | undefined
  let format: ImportResult['format']
  if (Array.isArray(doc)) {
    format = 'az-device-list'
    devices = doc as DeviceJson[]
  } else if (isObj(doc) && Array.isArray(doc.devices)) {
    format = 'edgemq'
    devices = doc.devices as DeviceJson[]
    if (doc.edgeHub !== undefined) {
      if (!isObj(doc.edgeHub)) throw bad('edgeHub must be an object (the $edgeHub desired document)', 'edgeHub')
      edgeHub = doc.edgeHub
    }
  } else {
    throw bad('expected an `edgemq hub export` document ({"edgemqExport": 1, "devices": […]}) or the JSON array `az iot hub device-identity list` prints')
  }
  devices.forEach((d, i) => {
    if (!isObj(d) || typeof d.deviceId !== 'string') throw bad('each device needs a string deviceId', `devices[${i}]`)
  })

  const result: ImportResult = { format, devices: { created: 0, updated: 0, skipped: 0 }, modules: 0, twins: 0, edgeHub: false, warnings: [] }
  // Edge devices first, so children can name them as parents; scopes are resolved by generation-free id.
  const ordered = [...devices].sort((a, b) => Number(isEdge(b)) - Number(isEdge(a)))
  const scopeOwner = new Map<string, string>()
  for (const d of devices) if (isEdge(d) && typeof d.deviceScope === 'string') scopeOwner.set(d.deviceScope, d.deviceId)
  const parentOf = (d: DeviceJson): string | undefined => {
    const scopes = [...(Array.isArray(d.parentScopes) ? d.parentScopes : []), ...(isEdge(d) ? [] : [d.deviceScope])].filter((s): s is string => typeof s === 'string' && s !== '')
    for (const s of scopes) {
      const owner = scopeOwner.get(s) ?? /^ms-azure-iot-edge:\/\/(.+)-\d+$/.exec(s)?.[1]
      if (owner && owner !== d.deviceId) return owner
    }
    return optStr(d.parentId)
  }

  for (const d of ordered) {
    const path = `devices[${devices.indexOf(d)}]`
    const creds = authOf(d, path)
    const status: IdentityStatus = d.status === 'disabled' ? 'disabled' : 'enabled'
    const existing = await store.getDevice(d.deviceId)
    const parentId = parentOf(d)
    if (!existing) {
      await registry.createDevice({ deviceId: d.deviceId, ...creds, status, statusReason: optStr(d.statusReason), edge: isEdge(d), parentId })
      result.devices.created++
      if (creds.auth === 'sas' && !creds.primaryKey) result.warnings.push(`device "${d.deviceId}": the input has no keys, so it got new ones (az device-identity list prints twins, without keys)`)
    } else if (existing.authType !== creds.auth) {
      result.devices.skipped++
      continue
    } else {
      const { auth: _auth, ...keys } = creds
      await registry.updateDevice(d.deviceId, { ...keys, status, ...(optStr(d.statusReason) ? { statusReason: optStr(d.statusReason) } : {}), edge: existing.deviceId === hub.edgeDeviceId ? true : isEdge(d), parentId: parentId ?? null })
      result.devices.updated++
    }
    if (d.properties || d.tags) {
      await putTwin(ctx, { deviceId: d.deviceId }, d.tags, d.properties)
      result.twins++
    }
    for (const [j, m] of (Array.isArray(d.modules) ? d.modules : []).entries()) {
      if (!isObj(m) || typeof m.moduleId !== 'string') throw bad('each module needs a string moduleId', `${path}.modules[${j}]`)
      const mc = authOf(m, `${path}.modules[${j}]`)
      const em = await store.getModule(d.deviceId, m.moduleId)
      if (!em) {
        await registry.createModule({ deviceId: d.deviceId, moduleId: m.moduleId, primaryKey: mc.primaryKey, secondaryKey: mc.secondaryKey, managedBy: optStr(m.managedBy) })
      } else if (mc.primaryKey || mc.secondaryKey) {
        await store.putModule({ ...em, primaryKey: mc.primaryKey ?? em.primaryKey, secondaryKey: mc.secondaryKey ?? em.secondaryKey })
      }
      result.modules++
      if (m.properties) {
        await putTwin(ctx, { deviceId: d.deviceId, moduleId: m.moduleId }, undefined, m.properties)
        result.twins++
      }
    }
  }
  if (edgeHub) {
    // Stored as is: a broker validates it on load and keeps the last good one if it is invalid.
    await store.updateTwin({ deviceId: hub.edgeDeviceId, moduleId: '$edgeHub' }, (t) => bumpTwin(t, { desired: strip(edgeHub as Json) }, true), 'desired')
    result.edgeHub = true
  }
  return result
}

function isEdge(d: DeviceJson): boolean {
  return isObj(d.capabilities) && d.capabilities.iotEdge === true
}

function bumpTwin(t: TwinRecord, set: { tags?: Json; desired?: Json; reported?: Json }, desiredChanged: boolean): TwinRecord {
  const version = t.version + 1
  const now = new Date().toISOString()
  return {
    ...t,
    ...(set.tags ? { tags: set.tags } : {}),
    ...(set.desired ? { desired: set.desired } : {}),
    ...(set.reported ? { reported: set.reported } : {}),
    desiredVersion: desiredChanged ? t.desiredVersion + 1 : t.desiredVersion,
    reportedVersion: set.reported ? t.reportedVersion + 1 : t.reportedVersion,
    ...(set.desired ? { desiredMetadata: metadataFor(set.desired as TwinObject, { $lastUpdated: now, $lastUpdatedVersion: desiredChanged ? t.desiredVersion + 1 : t.desiredVersion }) } : {}),
    ...(set.reported ? { reportedMetadata: metadataFor(set.reported as TwinObject, { $lastUpdated: now }) } : {}),
    version,
    etag: etagFor(version),
  }
}

async function putTwin(ctx: HubContext, key: { deviceId: string; moduleId?: string }, tags: unknown, props: unknown): Promise<void> {
  const p = isObj(props) ? props : {}
  const set = {
    ...(isObj(tags) ? { tags: strip(tags) } : {}),
    ...(isObj(p.desired) ? { desired: strip(p.desired) } : {}),
    ...(isObj(p.reported) ? { reported: strip(p.reported) } : {}),
  }
  await ctx.store.updateTwin(key, (t) => bumpTwin(t, set, set.desired !== undefined), set.desired !== undefined ? 'desired' : 'tags')
}
