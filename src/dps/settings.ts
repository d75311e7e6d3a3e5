/**
 * The hub's DPS settings: an id scope (persisted with the hub, shown by `hub show`), the host name
 * registrations are assigned to, and DPS's default `provisioningserviceowner` policy.
 */
import { randomBytes } from 'node:crypto'

import { generateKey } from '../registry/registry.js'
import { UsageError } from '../errors.js'
import type { DpsSettings, HubRecord, ServicePolicy, Store } from '../registry/types.js'

/** The policy DPS creates with every instance; it signs the service REST API's SAS tokens. */
export const DPS_OWNER_POLICY = 'provisioningserviceowner'

/** `assignedHub` unless configured: the broker's own host, as a device on this machine reaches it. */
export const DEFAULT_ASSIGNED_HUB = 'localhost'

/** The global device endpoint's stand-in: where `dps connection-string show` says the service is. */
export const DPS_SERVICE_HOST = 'localhost'

export function newDpsSettings(): DpsSettings {
  return {
    idScope: `0ne${randomBytes(4).toString('hex').toUpperCase()}`,
    assignedHub: DEFAULT_ASSIGNED_HUB,
    policies: [{ name: DPS_OWNER_POLICY, primaryKey: generateKey(), secondaryKey: generateKey(), rights: ['ServiceConfig', 'DeviceConnect', 'EnrollmentWrite'] }],
  }
}

export function dpsPolicy(settings: DpsSettings, name = DPS_OWNER_POLICY): ServicePolicy | undefined {
  return settings.policies.find((p) => p.name === name)
}

/**
 * Persists the host registrations are assigned to (and the broker accepts in device usernames and
 * SAS resources): the name devices reach this broker by, e.g. a LAN name for devices off this machine.
 */
export async function setDpsAssignedHub(ctx: { store: Store; hub: HubRecord }, host: string): Promise<HubRecord> {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(host)) throw new UsageError(`"${host}" is not a host name`, 'pass a DNS name or an IPv4 address, e.g. localhost or gateway.lan')
  if (ctx.hub.dps?.assignedHub === host) return ctx.hub
  ctx.hub = await ctx.store.updateHub((h) => ({ ...h, dps: { ...(h.dps ?? newDpsSettings()), assignedHub: host } }))
  return ctx.hub
}
