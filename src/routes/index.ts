/**
 * Routes from `$edgeHub` desired `routes` (PROTOCOL.md §5): compile them, then decide which
 * sinks a message goes to. Pure, no I/O.
 */
import type { DocumentIssue } from '../errors.js'
import { MessageScope, conditionMatches } from './evaluate.js'
import { RouteSyntaxError, parseRoute } from './parse.js'
import type { RoutableMessage, Route, RouteSink, RouteSource } from './types.js'

export * from './types.js'
export { RouteSyntaxError, parseRoute, parseSource, formatSink, formatSource, SUPPORTED_SINKS, SUPPORTED_SOURCES } from './parse.js'
export { evaluate, compare, MessageScope } from './evaluate.js'
export { FUNCTIONS, SYSTEM_PROPERTIES } from './functions.js'

export interface CompiledRoutes {
  /** Every problem found, each with its path (`routes.<name>`); empty when all compiled. */
  issues: DocumentIssue[]
  /** The routes that compiled, in document order. */
  routes: Route[]
}

/**
 * Compile the `routes` object of `$edgeHub` desired properties. Values are route strings, or the
 * schema 1.1+ object form `{ "route": "FROM …", "priority": 0-9, "timeToLiveSecs": n }`.
 * Collects every error instead of stopping at the first.
 */
export function compileRoutes(routes: Record<string, unknown>): CompiledRoutes {
  const issues: DocumentIssue[] = []
  const out: Route[] = []
  for (const [name, value] of Object.entries(routes)) {
    const path = `routes.${name}`
    let text: unknown = value
    let priority: number | undefined
    let ttl: number | undefined
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const obj = value as Record<string, unknown>
      text = obj['route']
      if (obj['priority'] !== undefined) {
        const p = obj['priority']
        if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 9) {
          issues.push({ path: `${path}.priority`, message: 'priority must be an integer from 0 (highest) to 9' })
        } else priority = p
      }
      if (obj['timeToLiveSecs'] !== undefined) {
        const t = obj['timeToLiveSecs']
        if (typeof t !== 'number' || !Number.isInteger(t) || t < 0) {
          issues.push({ path: `${path}.timeToLiveSecs`, message: 'timeToLiveSecs must be a non-negative integer' })
        } else ttl = t
      }
      if (typeof text !== 'string') {
        issues.push({ path: `${path}.route`, message: 'missing route text, e.g. "FROM /messages/* INTO $upstream"' })
        continue
      }
    }
    if (typeof text !== 'string') {
      issues.push({ path, message: 'a route must be a string like "FROM /messages/* INTO $upstream"' })
      continue
    }
    try {
      const r = parseRoute(text)
      r.name = name
      if (priority !== undefined) r.priority = priority
      if (ttl !== undefined) r.timeToLiveSecs = ttl
      out.push(r)
    } catch (err) {
      if (err instanceof RouteSyntaxError) issues.push({ path, message: `${err.detail} (column ${err.column})` })
      else throw err
    }
  }
  return { issues, routes: out }
}

/**
 * Does a message come from this source? A plain device's message (no module) is under
 * `/messages/*` and `/*`, never under `/messages/modules/…`.
 */
export function sourceMatches(source: RouteSource, message: RoutableMessage): boolean {
  const moduleId = message.moduleId
  const output = message.outputName ?? message.systemProperties.outputName
  switch (source.kind) {
    case 'all':
    case 'messages':
      return true
    case 'modules':
      return moduleId !== undefined
    case 'module':
      return moduleId === source.moduleId
    case 'module-outputs':
      return moduleId === source.moduleId && output !== undefined && output !== ''
    case 'module-output':
      return moduleId === source.moduleId && output === source.outputName
  }
}

function sinkKey(s: RouteSink): string {
  return s.kind === 'upstream' ? '$upstream' : `${s.moduleId}\u0000${s.inputName}`
}

/** The routes whose source and condition match the message, in order. */
export function matchRoutes(routes: readonly Route[], message: RoutableMessage): Route[] {
  const scope = new MessageScope(message)
  return routes.filter((r) => sourceMatches(r.source, message) && conditionMatches(r.condition, scope))
}

/** The sinks a message goes to: every matching route's sink, once each, in route order. */
export function routeMessage(routes: readonly Route[], message: RoutableMessage): RouteSink[] {
  const seen = new Set<string>()
  const sinks: RouteSink[] = []
  for (const r of matchRoutes(routes, message)) {
    const k = sinkKey(r.sink)
    if (seen.has(k)) continue
    seen.add(k)
    sinks.push(r.sink)
  }
  return sinks
}
