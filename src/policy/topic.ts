/**
 * MQTT 3.1.1 topic names and topic filters (section 4.7), as pure functions.
 *
 * Levels are split on `/`; empty levels are legal (`/local/telemetry` has an empty first level).
 * The `$` rule [MQTT-4.7.2-1]: a filter whose FIRST level is a wildcard (`+` or `#`) never matches
 * a topic whose first level starts with `$` (`+/b` does not match `$SYS/b`, `#` does not match `$SYS`).
 */

/** Why `name` is not a valid topic name (for PUBLISH), or null when it is. */
export function topicNameError(name: string): string | null {
  if (name.length === 0) return 'a topic name must not be empty' // [MQTT-4.7.3-1]
  if (name.includes('\u0000')) return 'a topic name must not contain the NUL character' // [MQTT-4.7.3-2]
  if (name.includes('+') || name.includes('#')) return 'a topic name must not contain the wildcards + or #' // [MQTT-3.3.2-2]
  return null
}

/** Why `filter` is not a valid topic filter (for SUBSCRIBE and policy resources), or null when it is. */
export function topicFilterError(filter: string): string | null {
  const n = filter.length
  if (n === 0) return 'a topic filter must not be empty' // [MQTT-4.7.3-1]
  // One pass over the characters (the broker validates every SUBSCRIBE filter).
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i)
    if (c === 0) return 'a topic filter must not contain the NUL character'
    if (c !== 35 /* # */ && c !== 43 /* + */) continue
    const wholeLevel = (i === 0 || filter.charCodeAt(i - 1) === 47) && (i === n - 1 || filter.charCodeAt(i + 1) === 47)
    if (c === 43) {
      if (!wholeLevel) return '+ must occupy a whole level (e.g. "a/+", not "a+")' // [MQTT-4.7.1-3]
    } else if (!wholeLevel) {
      return '# must occupy a whole level (e.g. "a/#", not "a#")'
    } else if (i !== n - 1) {
      return '# must be the last level of a filter (e.g. "a/#", not "a/#/b")' // [MQTT-4.7.1-2]
    }
  }
  return null
}

/** True when the topic (or filter) starts with `$` (a "system" topic, see the `$` rule). */
export function isDollarTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 36 /* $ */
}

/**
 * Does a valid `filter` match a valid topic name `topic`? Implements MQTT 4.7 including
 * `a/#` matching `a` itself and the `$` rule. Both arguments are assumed valid.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (isDollarTopic(topic) && (filter.charCodeAt(0) === 43 /* + */ || filter.charCodeAt(0) === 35 /* # */)) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true // matches the parent level too: `a/#` matches `a` [MQTT-4.7.1-2]
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}
