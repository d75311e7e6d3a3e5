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

/**
 * True when every topic filter `b` matches is matched by `a` too (so subscribing to `b` next to
 * `a` only makes the parent send some messages twice). `#` at the first level does not cover
 * `$…` topics (MQTT 3.1.1 §4.7.2), and `a/#` covers `a` itself.
 */
export function filterCovers(a: string, b: string): boolean {
  const fa = a.split('/')
  const fb = b.split('/')
  if (b.startsWith('$') && (fa[0] === '#' || fa[0] === '+')) return false
  for (let i = 0; i < fb.length; i++) {
    if (i >= fa.length) return false
    if (fa[i] === '#') return true
    if (fb[i] === '#') return false // b reaches any depth here, a does not
    if (fa[i] === '+') continue // covers a level name or `+`
    if (fb[i] === '+' || fa[i] !== fb[i]) return false
  }
  return fa.length === fb.length || (fa.length === fb.length + 1 && fa[fb.length] === '#')
}

/**
 * The remote filters `in` rules need: each once, and none another one covers (the parent would
 * send a message matching both twice). Order: as the rules first name them.
 */
export function remoteFilters(rules: readonly BridgeRule[]): string[] {
  const unique = [...new Set(rules.map((r) => r.filter))]
  return unique.filter((f, i) => !unique.some((g, j) => j !== i && filterCovers(g, f) && (!filterCovers(f, g) || j < i)))
}
