/**
 * Built-in rules (PROTOCOL.md §3, §4): every client may use its OWN IoT Hub topics without a
 * policy rule. Ids are inserted as literal levels (an IoT Hub device id may legally contain
 * `+` or `#`; it must never act as a wildcard). `x/#` also matches `x` itself, which covers
 * `devices/d/messages/events` with and without the trailing `/` and property bag.
 */
import { HASH, type Segment } from './template.js'
import type { Identity } from './types.js'

export interface OwnTopics {
  publish: Segment[][]
  subscribe: Segment[][]
}

/** The identity's own telemetry, C2D and module input/output topics: they name its ids. */
export function identityIotHubTopics(id: Identity): OwnTopics {
  const d = id.deviceId
  const m = id.moduleId
  if (m === undefined) {
    return {
      publish: [['devices', d, 'messages', 'events', HASH]], // telemetry
      subscribe: [['devices', d, 'messages', 'devicebound', HASH]], // C2D
    }
  }
  return {
    publish: [
      ['devices', d, 'modules', m, 'messages', 'events', HASH], // module telemetry / outputs
      ['devices', d, m, 'messages', 'events', HASH], // the seed's form, accepted too (§4)
    ],
    subscribe: [['devices', d, 'modules', m, 'inputs', HASH]], // routed module inputs
  }
}

/**
 * Twin and direct methods: requests out, responses in (§4). The same filters for every client
 * (the broker keeps each client's `$iothub` traffic private, so they name no id), which lets the
 * policy views share one trie of them instead of building it per connection.
 */
export const SHARED_IOTHUB_TOPICS: Readonly<OwnTopics> = Object.freeze<OwnTopics>({
  publish: [
    ['$iothub', 'twin', 'GET', HASH],
    ['$iothub', 'twin', 'PATCH', 'properties', 'reported', HASH],
    ['$iothub', 'methods', 'res', HASH],
  ],
  subscribe: [
    ['$iothub', 'twin', 'res', HASH],
    ['$iothub', 'twin', 'PATCH', 'properties', 'desired', HASH],
    ['$iothub', 'methods', 'POST', HASH],
  ],
})
