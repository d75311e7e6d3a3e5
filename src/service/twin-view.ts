/** The service-side twin JSON (az `device-twin show`, REST GET /twins, query results) from the registry. */
import type { HubContext } from '../config/home.js'
import { NotFoundError } from '../errors.js'
import type { QueryDocument, QuerySource } from '../query/index.js'
import type { DeviceRecord, ModuleRecord, TwinKey, TwinRecord } from '../registry/types.js'
import { scopesOf, thumbprintsOf } from '../registry/views.js'
import { serviceTwinJson, type ServiceTwinJson, type Twin } from '../twin/index.js'

/** What only a running broker knows: who is connected, how deep each device's C2D queue is. */
export interface LiveTwinState {
  isConnected(key: TwinKey): boolean
  c2dDepth(deviceId: string): number
  lastActivityTime(key: TwinKey): string | undefined
}

function twinOf(twin: TwinRecord, device: DeviceRecord, module: ModuleRecord | undefined, parent: DeviceRecord | undefined, live?: LiveTwinState): ServiceTwinJson {
  const rec = module ?? device
  const key = module ? { deviceId: device.deviceId, moduleId: module.moduleId } : { deviceId: device.deviceId }
  return serviceTwinJson(twin as Twin, {
    deviceId: device.deviceId,
    moduleId: module?.moduleId,
    deviceEtag: rec.etag,
    status: device.status,
    statusReason: device.statusReason ?? null,
    statusUpdateTime: device.statusUpdatedAt,
    authenticationType: rec.authType,
    x509Thumbprint: thumbprintsOf(rec),
    ...(live
      ? { connectionState: live.isConnected(key) ? 'Connected' : 'Disconnected', cloudToDeviceMessageCount: module ? 0 : live.c2dDepth(device.deviceId), lastActivityTime: live.lastActivityTime(key) }
      : {}),
    iotEdge: device.edge,
    ...scopesOf(device, parent),
  })
}

export async function serviceTwinView(ctx: Pick<HubContext, 'registry' | 'store'>, key: TwinKey, live?: LiveTwinState): Promise<ServiceTwinJson> {
  const { device, module } = await ctx.registry.identity(key.deviceId, key.moduleId)
  const twin = await ctx.store.getTwin(key)
  if (!twin) throw new NotFoundError(`twin of "${key.moduleId ?? key.deviceId}" not found`)
  return twinOf(twin, device, module, module ? undefined : await ctx.registry.parentOf(device), live)
}

/** Every device twin (by device id), or every module twin (by device, then module id), for queries. */
export function twinQuerySource(ctx: Pick<HubContext, 'store'>, live?: LiveTwinState): QuerySource {
  return {
    async twins(from) {
      const devices = (await ctx.store.listDevices()).sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
      const byId = new Map(devices.map((d) => [d.deviceId, d]))
      const out: QueryDocument[] = []
      for (const device of devices) {
        if (from === 'devices') {
          const twin = await ctx.store.getTwin({ deviceId: device.deviceId })
          if (twin) out.push(twinOf(twin, device, undefined, device.parentId ? byId.get(device.parentId) : undefined, live) as unknown as QueryDocument)
          continue
        }
        const modules = (await ctx.store.listModules(device.deviceId)).sort((a, b) => (a.moduleId < b.moduleId ? -1 : a.moduleId > b.moduleId ? 1 : 0))
        for (const module of modules) {
          const twin = await ctx.store.getTwin({ deviceId: device.deviceId, moduleId: module.moduleId })
          if (twin) out.push(twinOf(twin, device, module, undefined, live) as unknown as QueryDocument)
        }
      }
      return out
    },
  }
}
