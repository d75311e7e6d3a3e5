/**
 * Validation of `mqttBroker.authorizations` (PROTOCOL.md §3 "Validation errors name the JSON
 * path and the fix"). Collects every issue; never stops at the first.
 *
 * Choices (documented in the report and README):
 * - Unknown properties in statements and rules are errors: a typo such as `"alow"` would
 *   otherwise silently drop a rule and change who may do what.
 * - An empty resource string is an error (MQTT forbids empty filters); use "#" for everything.
 * - A publish/subscribe rule without resources is an error (it could never match anything).
 * - Resources on a connect-only rule are a warning (they are ignored for mqtt:connect).
 * - An allow resource whose first level is a `$` literal (e.g. `$SYS/#`) is a warning: such
 *   topics are always denied, whatever the policy says.
 */
import { isJsonObject } from './lenient-json.js'
import { describe, pathIndex, pathKey } from './json-path.js'
import type { CompiledRule, CompiledStatement } from './compiled.js'
import { parseIdentity, parseResource, type IdentityMatcher, type ResourceTemplate } from './template.js'
import { OPERATION_NAMES, type Operation, type PolicyIssue } from './types.js'

const STATEMENT_KEYS = ['identities', 'allow', 'deny', 'description']
const RULE_KEYS = ['operations', 'resources']
const SUPPORTED_OPERATIONS = OPERATION_NAMES.join(', ')

/**
 * Validate a policy. `basePath` prefixes every path (`authorizations` standalone,
 * `mqttBroker.authorizations` inside an `$edgeHub` desired document).
 */
export function validatePolicy(authorizations: unknown, basePath = 'authorizations'): PolicyIssue[] {
  return analyzePolicy(authorizations, basePath).issues
}

/**
 * Validate and, in the same pass, build the compiled statements (meaningful only when there
 * are no errors), so a policy is parsed once.
 */
export function analyzePolicy(authorizations: unknown, basePath = 'authorizations'): { issues: PolicyIssue[]; statements: CompiledStatement[] } {
  const issues: PolicyIssue[] = []
  const statements: CompiledStatement[] = []
  const error = (path: string, message: string): void => void issues.push({ path, message, severity: 'error' })
  const warn = (path: string, message: string): void => void issues.push({ path, message, severity: 'warning' })

  if (!Array.isArray(authorizations)) {
    error(basePath, `must be an array of statements, got ${describe(authorizations)}; e.g. [{"identities": ["{{iot:identity}}"], "allow": [{"operations": ["mqtt:connect"]}]}]`)
    return { issues, statements }
  }

  authorizations.forEach((statement: unknown, si) => {
    const sp = pathIndex(basePath, si)
    const matchers: IdentityMatcher[] = []
    const compiledRules: Record<'allow' | 'deny', CompiledRule[]> = { allow: [], deny: [] }
    const compiled: CompiledStatement = { index: si, identities: matchers, deny: compiledRules.deny, allow: compiledRules.allow }
    statements.push(compiled)
    if (!isJsonObject(statement)) {
      error(sp, `a statement must be an object with "identities" and "allow" and/or "deny", got ${describe(statement)}`)
      return
    }
    for (const key of Object.keys(statement)) {
      if (!STATEMENT_KEYS.includes(key)) error(pathKey(sp, key), `unknown property "${key}"; a statement has only: ${STATEMENT_KEYS.join(', ')}`)
    }

    // identities
    const ids = statement.identities
    const ip = pathKey(sp, 'identities')
    if (ids === undefined) {
      error(ip, 'identities is missing; list the client ids this statement applies to, e.g. ["{{iot:identity}}"] or ["sensor_1"]')
    } else if (!Array.isArray(ids)) {
      error(ip, `identities must be an array of client ids or variables, got ${describe(ids)}`)
    } else if (ids.length === 0) {
      error(ip, 'identities is empty; list at least one client id or variable, e.g. ["{{iot:identity}}"]')
    } else {
      ids.forEach((id: unknown, ii) => {
        const p = pathIndex(ip, ii)
        if (typeof id !== 'string') return error(p, `an identity must be a string, got ${describe(id)}`)
        const r = parseIdentity(id)
        if (r.error) error(p, r.error)
        else if (r.matcher) matchers.push(r.matcher)
      })
    }

    const d = statement.description
    if (d !== undefined && typeof d !== 'string') error(pathKey(sp, 'description'), `description must be a string, got ${describe(d)}`)
    if (typeof d === 'string') compiled.description = d

    // allow / deny
    let ruleCount = 0
    for (const effect of ['deny', 'allow'] as const) {
      const rules = statement[effect]
      if (rules === undefined) continue
      const ep = pathKey(sp, effect)
      if (!Array.isArray(rules)) {
        error(ep, `${effect} must be an array of rules like [{"operations": ["mqtt:publish"], "resources": ["a/b"]}], got ${describe(rules)}`)
        ruleCount++ // don't also report "empty statement"
        continue
      }
      ruleCount += rules.length
      const out = compiledRules[effect]
      rules.forEach((rule: unknown, ri) => out.push(validateRule(rule, pathIndex(ep, ri), effect, error, warn)))
    }
    if (ruleCount === 0) error(sp, 'empty statement: it has no "allow" or "deny" rules; add a rule such as "allow": [{"operations": ["mqtt:connect"]}] or remove the statement')
  })
  return { issues, statements }
}

function validateRule(
  rule: unknown,
  rp: string,
  effect: 'allow' | 'deny',
  error: (path: string, message: string) => void,
  warn: (path: string, message: string) => void,
): CompiledRule {
  const operations = new Set<Operation>()
  const resources: ResourceTemplate[] = []
  const compiled: CompiledRule = { operations, resources }
  if (!isJsonObject(rule)) {
    error(rp, `a rule must be an object with "operations" (and "resources" for publish/subscribe), got ${describe(rule)}`)
    return compiled
  }
  for (const key of Object.keys(rule)) {
    if (!RULE_KEYS.includes(key)) error(pathKey(rp, key), `unknown property "${key}"; a rule has only: ${RULE_KEYS.join(', ')}`)
  }
  const ops = rule.operations
  const op = pathKey(rp, 'operations')
  const seen = new Set<string>()
  if (ops === undefined) error(op, `operations is missing; list some of: ${SUPPORTED_OPERATIONS}`)
  else if (!Array.isArray(ops)) error(op, `operations must be an array, got ${describe(ops)}; list some of: ${SUPPORTED_OPERATIONS}`)
  else if (ops.length === 0) error(op, `operations is empty; list some of: ${SUPPORTED_OPERATIONS}`)
  else {
    ops.forEach((o: unknown, oi) => {
      const p = pathIndex(op, oi)
      if (typeof o !== 'string') error(p, `an operation must be a string, got ${describe(o)}; supported: ${SUPPORTED_OPERATIONS}`)
      else if (!(OPERATION_NAMES as readonly string[]).includes(o)) error(p, `unknown operation "${o}"; supported: ${SUPPORTED_OPERATIONS}`)
      else {
        seen.add(o)
        operations.add(o.slice(5) as Operation) // "mqtt:publish" → "publish"
      }
    })
  }

  const res = rule.resources
  const resPath = pathKey(rp, 'resources')
  const topicOps = [...seen].filter((o) => o !== 'mqtt:connect')
  let resourceCount = 0
  if (res !== undefined) {
    if (!Array.isArray(res)) {
      error(resPath, `resources must be an array of topics or filters, got ${describe(res)}`)
      resourceCount = -1 // reported; don't add "missing resources"
    } else {
      resourceCount = res.length
      res.forEach((r: unknown, ri) => {
        const p = pathIndex(resPath, ri)
        if (typeof r !== 'string') return error(p, `a resource must be a topic or filter string, got ${describe(r)}`)
        const parsed = parseResource(r)
        if (parsed.error) return error(p, parsed.error)
        if (parsed.template) resources.push(parsed.template)
        if (effect === 'allow' && r.startsWith('$') && topicOps.length > 0) {
          warn(p, `"${r}" is never allowed: clients may only use their own $iothub topics, every other $ topic is always denied (PROTOCOL.md §3)`)
        }
      })
    }
  }
  if (resourceCount === 0 && topicOps.length > 0) {
    error(resPath, `${topicOps.join(' and ')} need resources: list the topics or filters this rule covers, e.g. ["events/alerts"] or ["#"] for every topic`)
  }
  if (resourceCount > 0 && seen.size > 0 && topicOps.length === 0) {
    warn(resPath, 'resources are ignored for mqtt:connect; remove them')
  }
  return compiled
}
