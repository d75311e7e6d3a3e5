/**
 * az `iot edge export-modules -d <device>`: the device's module twins' desired properties as a
 * deployment's content (`{content: {modulesContent: {<module>: {"properties.desired": …}}}}`), every
 * module of the device (az lists them all, `$edgeAgent` and `$edgeHub` included), without `$metadata`
 * and `$version`.
 */
import type { HubContext } from '../config/home.js'
import { serviceTwinView } from '../service/twin-view.js'

export async function exportModules(ctx: Pick<HubContext, 'registry' | 'store'>, deviceId: string): Promise<{ content: { modulesContent: Record<string, { 'properties.desired': Record<string, unknown> }> } }> {
  const modulesContent: Record<string, { 'properties.desired': Record<string, unknown> }> = {}
  for (const m of await ctx.registry.listModules(deviceId)) {
    const twin = await serviceTwinView(ctx, { deviceId, moduleId: m.moduleId })
    const { $metadata: _metadata, $version: _version, ...desired } = twin.properties.desired as Record<string, unknown>
    modulesContent[m.moduleId] = { 'properties.desired': desired }
  }
  return { content: { modulesContent } }
}
