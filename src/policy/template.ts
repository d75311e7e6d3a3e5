/**
 * Policy variables (PROTOCOL.md §3 "Identities"): `{{iot:identity}}`, `{{iot:device_id}}`,
 * `{{iot:module_id}}`, `{{mqtt:client_id}}`. This module parses identities and resource
 * templates once; compile.ts resolves them per connected client.
 */
import { topicFilterError } from './topic.js'
import type { Identity } from './types.js'

export const VARIABLE_NAMES = ['iot:identity', 'iot:device_id', 'iot:module_id', 'mqtt:client_id'] as const
export type VariableName = (typeof VARIABLE_NAMES)[number]
export const SUPPORTED_VARIABLES = VARIABLE_NAMES.map((v) => `{{${v}}}`).join(', ')

function isVariableName(s: string): s is VariableName {
  return (VARIABLE_NAMES as readonly string[]).includes(s)
}

export type TemplatePart = { text: string } | { variable: VariableName }

/** Split a string into text and variables; `error` names the first bad variable. */
export function parseTemplate(s: string): { parts: TemplatePart[]; error?: string } {
  const parts: TemplatePart[] = []
  let i = 0
  while (i < s.length) {
    const open = s.indexOf('{{', i)
    if (open < 0) {
      parts.push({ text: s.slice(i) })
      break
    }
    if (open > i) parts.push({ text: s.slice(i, open) })
    const close = s.indexOf('}}', open + 2)
    if (close < 0) {
      return { parts, error: `unterminated variable "${s.slice(open)}"; write variables as {{name}}, supported: ${SUPPORTED_VARIABLES}` }
    }
    const name = s.slice(open + 2, close)
    if (!isVariableName(name)) {
      return { parts, error: `unknown variable "{{${name}}}"; supported: ${SUPPORTED_VARIABLES}` }
    }
    parts.push({ variable: name })
    i = close + 2
  }
  return { parts }
}

// ---------------------------------------------------------------- identities

/**
 * How a statement identity matches a client. A variable must be the whole entry:
 * `{{iot:identity}}` and `{{mqtt:client_id}}` match every (registered, authenticated) client,
 * `{{iot:device_id}}` every device client (no module), `{{iot:module_id}}` every module client.
 */
export type IdentityMatcher = { kind: 'any' } | { kind: 'devices' } | { kind: 'modules' } | { kind: 'exact'; clientId: string }

export function parseIdentity(s: string): { matcher?: IdentityMatcher; error?: string } {
  if (s.length === 0) return { error: 'identity is empty; write a client id ("sensor_1", "dev/mod") or a variable such as {{iot:identity}}' }
  if (!s.includes('{{')) return { matcher: { kind: 'exact', clientId: s } }
  const { parts, error } = parseTemplate(s)
  if (error) return { error }
  const only = parts.length === 1 ? parts[0] : undefined
  if (!only || !('variable' in only)) {
    return { error: `a variable must be the whole identity ("${s}" mixes text and variables); use a client id or one of ${SUPPORTED_VARIABLES}` }
  }
  switch (only.variable) {
    case 'iot:identity':
    case 'mqtt:client_id':
      return { matcher: { kind: 'any' } }
    case 'iot:device_id':
      return { matcher: { kind: 'devices' } }
    case 'iot:module_id':
      return { matcher: { kind: 'modules' } }
  }
}

export function identityMatches(m: IdentityMatcher, id: Identity): boolean {
  switch (m.kind) {
    case 'any':
      return true
    case 'devices':
      return id.moduleId === undefined
    case 'modules':
      return id.moduleId !== undefined
    case 'exact':
      return m.clientId === id.clientId
  }
}

// ---------------------------------------------------------------- resources

/** A resolved filter level: literal text, or a wildcard. Symbols keep a literal "+" in an id apart from the wildcard. */
export const PLUS: unique symbol = Symbol('+')
export const HASH: unique symbol = Symbol('#')
export type Segment = string | typeof PLUS | typeof HASH

/** A resource filter with variables, parsed once. */
export interface ResourceTemplate {
  source: string
  /** Levels with variables (empty when `fixed` is set). */
  levels: Array<typeof PLUS | typeof HASH | TemplatePart[]>
  needsModule: boolean
  /** The resolved filter when the resource has no variables (shared by every client). */
  fixed: Segment[] | null
}

/** Parse and validate one resource (a topic or filter, maybe with variables). */
export function parseResource(s: string): { template?: ResourceTemplate; error?: string } {
  if (s.length === 0) return { error: 'invalid topic filter "": a topic filter must not be empty; use "#" for every topic' }
  const hasVariables = s.includes('{{')
  if (hasVariables) {
    const { error } = parseTemplate(s)
    if (error) return { error }
  }
  // Validate the shape with every variable replaced by a plain, level-safe value.
  const filterError = topicFilterError(hasVariables ? s.replace(/\{\{[^}]*\}\}/g, 'x') : s)
  if (filterError) return { error: `invalid topic filter "${s}": ${filterError}` }
  const split = s.split('/')
  if (!hasVariables) {
    const fixed = split.map((l): Segment => (l === '+' ? PLUS : l === '#' ? HASH : l))
    return { template: { source: s, levels: [], needsModule: false, fixed } }
  }
  const levels: ResourceTemplate['levels'] = []
  let needsModule = false
  for (const level of split) {
    if (level === '+') levels.push(PLUS)
    else if (level === '#') levels.push(HASH)
    else if (!level.includes('{{')) levels.push([{ text: level }])
    else {
      const lp = parseTemplate(level).parts
      for (const p of lp) if ('variable' in p && p.variable === 'iot:module_id') needsModule = true
      levels.push(lp)
    }
  }
  return { template: { source: s, levels, needsModule, fixed: null } }
}

function variableValue(v: VariableName, id: Identity): string {
  switch (v) {
    case 'iot:identity':
    case 'mqtt:client_id':
      return id.clientId
    case 'iot:device_id':
      return id.deviceId
    case 'iot:module_id':
      return id.moduleId ?? ''
  }
}

/**
 * Resolve a resource for one client (callers must not modify the result: it may be shared).
 * Substituted text is always literal, and a client id
 * `dev/mod` spans two levels. Returns null when the resource needs `{{iot:module_id}}` and
 * the client is a device (PROTOCOL.md §3: "a device-only client never matches a rule that needs it").
 */
export function resolveResource(t: ResourceTemplate, id: Identity): Segment[] | null {
  if (t.fixed !== null) return t.fixed
  if (t.needsModule && id.moduleId === undefined) return null
  const out: Segment[] = []
  for (const level of t.levels) {
    if (level === PLUS || level === HASH) {
      out.push(level)
      continue
    }
    let text = ''
    for (const p of level) text += 'text' in p ? p.text : variableValue(p.variable, id)
    for (const piece of text.split('/')) out.push(piece)
  }
  return out
}
