/**
 * Consumer groups of the built-in endpoint (`az iot hub consumer-group create/list/show/delete`).
 * `$Default` always exists; created ones live in the hub record, so a running broker sees a group
 * another process created (the change feed refreshes its copy, and a receiver for a group it does
 * not know yet makes it re-read the record first).
 */
import { ConflictError, NotFoundError, UsageError } from '../errors.js'
import type { ConsumerGroupRecord, HubRecord, Store } from '../registry/types.js'

export const DEFAULT_CONSUMER_GROUP = '$Default'

/** What `consumer-group show/list` print (az's resource shape, trimmed to what is local). */
export interface ConsumerGroupView {
  name: string
  eventHubEndpointName: 'events'
  properties: { created: string | null }
  type: 'Microsoft.Devices/IotHubs/EventHubEndpoints/ConsumerGroups'
}

function view(name: string, created: string | null): ConsumerGroupView {
  return { name, eventHubEndpointName: 'events', properties: { created }, type: 'Microsoft.Devices/IotHubs/EventHubEndpoints/ConsumerGroups' }
}

/** Event Hubs' rule: 1–50 letters, digits, periods, hyphens, underscores; a letter or digit at each end. */
export function validateConsumerGroupName(name: string): void {
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$/.test(name)) {
    throw new UsageError(`invalid consumer group name "${name}"`, 'use 1–50 letters, digits, periods, hyphens or underscores, starting and ending with a letter or digit')
  }
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

export function listConsumerGroups(hub: HubRecord): ConsumerGroupView[] {
  return [view(DEFAULT_CONSUMER_GROUP, hub.createdAt), ...(hub.consumerGroups ?? []).map((g) => view(g.name, g.createdAt))]
}

/** The group by name (case-insensitive, as Event Hubs), or undefined. */
export function findConsumerGroup(hub: HubRecord, name: string): ConsumerGroupView | undefined {
  return listConsumerGroups(hub).find((g) => same(g.name, name))
}

export function showConsumerGroup(hub: HubRecord, name: string): ConsumerGroupView {
  const g = findConsumerGroup(hub, name)
  if (!g) throw new NotFoundError(`consumer group "${name}" not found on hub "${hub.name}"`, 'list them with `edgemq hub consumer-group list`')
  return g
}

/** An open hub (a HubContext): its store and the record the caller holds. */
export interface HubHandle {
  store: Store
  hub: HubRecord
}

/** The hub as the store has it now, copied into `hub` (the caller's record stays current). */
async function update({ store, hub }: HubHandle, mutate: (h: HubRecord) => HubRecord): Promise<HubRecord> {
  const next = await store.updateHub(mutate)
  Object.assign(hub, next)
  if (!next.consumerGroups) delete hub.consumerGroups
  return hub
}

export async function createConsumerGroup(ctx: HubHandle, name: string): Promise<ConsumerGroupView> {
  validateConsumerGroupName(name)
  const record: ConsumerGroupRecord = { name, createdAt: new Date().toISOString() }
  await update(ctx, (h) => {
    if (findConsumerGroup(h, name)) throw new ConflictError(`consumer group "${name}" already exists on hub "${h.name}"`)
    return { ...h, consumerGroups: [...(h.consumerGroups ?? []), record] }
  })
  return view(record.name, record.createdAt)
}

export async function deleteConsumerGroup(ctx: HubHandle, name: string): Promise<void> {
  if (same(name, DEFAULT_CONSUMER_GROUP)) throw new UsageError(`the ${DEFAULT_CONSUMER_GROUP} consumer group cannot be deleted`)
  await update(ctx, (h) => {
    const rest = (h.consumerGroups ?? []).filter((g) => !same(g.name, name))
    if (rest.length === (h.consumerGroups ?? []).length) throw new NotFoundError(`consumer group "${name}" not found on hub "${h.name}"`)
    return { ...h, consumerGroups: rest }
  })
}
