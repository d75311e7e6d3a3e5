/**
 * The hub's DPS settings: an id scope (persisted with the hub, shown by `hub show`), the host name
 * registrations are assigned to, and DPS's default `provisioningserviceowner` policy.
 */
import { randomBytes } from 'node:crypto'

import { generateKey } from '../registry/registry.js'
import type { DpsSettings, ServicePolicy } from '../registry/types.js'

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
