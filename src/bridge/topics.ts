/**
 * Bridge topic mapping (PROTOCOL.md §6). Pure.
 *   out: subscribe locally to inPrefix+topic, publish remotely to outPrefix + (local topic minus inPrefix)
 *   in:  subscribe remotely to outPrefix+topic, publish locally to inPrefix + (remote topic minus outPrefix)
 * An empty topic means everything below the prefix: the seed's `{"topic": "", "inPrefix":
 * "/local/telemetry", "outPrefix": "/remote/messages"}` sends `/local/telemetry/#` to `/remote/messages/#`.
 */
import type { BridgeSetting } from '../edgehub/config.js'

function trimSlash(prefix: string): string {
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
}

/** The filter a prefix + topic setting subscribes to. */
export function prefixedFilter(prefix: string, topic: string): string {
  const p = trimSlash(prefix)
  if (!p) return topic === '' ? '#' : topic
  return topic === '' ? `${p}/#` : `${p}/${topic}`
}

/** Moves `topic` from below `from` to below `to`; undefined when it is not below `from`. */
export function remapTopic(topic: string, from: string, to: string): string | undefined {
  const f = trimSlash(from)
  const t = trimSlash(to)
  let rest: string
  if (!f) rest = topic
  else if (topic === f) rest = ''
  else if (topic.startsWith(f + '/')) rest = topic.slice(f.length + 1)
  else return undefined
  if (!t) return rest === '' ? undefined : rest
  return rest === '' ? t : `${t}/${rest}`
}

export interface BridgeRule {
  /** Local filter (out) or remote filter (in). */
  filter: string
  from: string
  to: string
}

/** Splits settings into the local filters to forward out and the remote filters to bring in. */
export function compileBridgeSettings(settings: readonly BridgeSetting[]): { out: BridgeRule[]; in: BridgeRule[] } {
  const out: BridgeRule[] = []
  const inbound: BridgeRule[] = []
  for (const s of settings) {
    if (s.direction === 'out' || s.direction === 'both') out.push({ filter: prefixedFilter(s.inPrefix, s.topic), from: s.inPrefix, to: s.outPrefix })
    if (s.direction === 'in' || s.direction === 'both') inbound.push({ filter: prefixedFilter(s.outPrefix, s.topic), from: s.outPrefix, to: s.inPrefix })
  }
  return { out, in: inbound }
}
