/** The service-side twin JSON (az `device-twin show`, REST GET /twins) from the registry. */
import type { HubContext } from '../config/home.js'
import { NotFoundError } from '../errors.js'
import type { TwinKey } from '../registry/types.js'
import { serviceTwinJson, type ServiceTwinJson, type Twin } from '../twin/index.js'

export async function serviceTwinView(ctx: Pick<HubContext, 'registry' | 'store'>, key: TwinKey, connected?: boolean): Promise<ServiceTwinJson> {
  const { device, module } = await ctx.registry.identity(key.deviceId, key.moduleId)
  const twin = await ctx.store.getTwin(key)
  if (!twin) throw new NotFoundError(`twin of "${key.moduleId ?? key.deviceId}" not found`)
  return serviceTwinJson(twin as Twin, {
    deviceId: key.deviceId,
    moduleId: key.moduleId,
    status: device.status,
    authenticationType: (module ?? device).authType,
    ...(connected === undefined ? {} : { connectionState: connected ? 'Connected' : 'Disconnected' }),
    iotEdge: device.edge,
  })
}
