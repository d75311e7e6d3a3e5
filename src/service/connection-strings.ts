/**
 * `az iot hub connection-string show`: the hub's connection string for one policy (iothubowner by
 * default), or with `--all` for every policy (with `--eh`: every policy with ServiceConnect, the
 * right reading the built-in endpoint needs), as az lists them.
 */
import { eventHubConnectionString, type EventHubConnectionStringOptions } from '../eventhubs/connection-string.js'
import type { Registry } from '../registry/registry.js'
import { grants } from '../registry/rights.js'

export interface HubConnectionStringOptions extends Omit<EventHubConnectionStringOptions, 'host'> {
  /** The built-in Event Hubs-compatible endpoint's string instead of the hub's (az --eh). */
  eventHub?: boolean
  /** HostName (or the endpoint's host, with `eventHub`): the local REST API or gateway host. */
  gateway?: string
}

function one(registry: Registry, hubName: string, opts: HubConnectionStringOptions): string {
  return opts.eventHub
    ? eventHubConnectionString(registry, hubName, { ...opts, host: opts.gateway })
    : registry.serviceConnectionString({ policy: opts.policy, gateway: opts.gateway, keyType: opts.keyType })
}

export function hubConnectionStrings(registry: Registry, hubName: string, opts: HubConnectionStringOptions & { all?: boolean } = {}): { connectionString: string | string[] } {
  if (!opts.all) return { connectionString: one(registry, hubName, opts) }
  const policies = registry.hub.policies.filter((p) => !opts.eventHub || grants(p.rights, 'ServiceConnect'))
  return { connectionString: policies.map((p) => one(registry, hubName, { ...opts, policy: p.name })) }
}
