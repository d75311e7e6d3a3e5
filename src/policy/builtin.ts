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

export function ownIotHubTopics(id: Identity): OwnTopics {
  const d = id.deviceId
  const m = id.moduleId
  const publish: Segment[][] = []
  const subscribe: Segment[][] = []
  if (m === undefined) {
    publish.push(['devices', d, 'messages', 'events', HASH]) // telemetry
    subscribe.push(['devices', d, 'messages', 'devicebound', HASH]) // C2D
  } else {
    publish.push(['devices', d, 'modules', m, 'messages', 'events', HASH]) // module telemetry / outputs
    publish.push(['devices', d, m, 'messages', 'events', HASH]) // the seed's form, accepted too (§4)
    subscribe.push(['devices', d, 'modules', m, 'inputs', HASH]) // routed module inputs
  }
  // Twin and direct methods: requests out, responses in (§4).
  publish.push(['$iothub', 'twin', 'GET', HASH])
  publish.push(['$iothub', 'twin', 'PATCH', 'properties', 'reported', HASH])
  publish.push(['$iothub', 'methods', 'res', HASH])
  subscribe.push(['$iothub', 'twin', 'res', HASH])
  subscribe.push(['$iothub', 'twin', 'PATCH', 'properties', 'desired', HASH])
  subscribe.push(['$iothub', 'methods', 'POST', HASH])
  return { publish, subscribe }
}
