/**
 * Condition evaluation with IoT Hub's three-valued logic: a missing property is `undefined`,
 * comparisons with it are `undefined`, and a condition that is not exactly `true` does not route
 * (routing query syntax: "If the expression evaluates to a null or undefined value, it's treated
 * as a Boolean false value").
 *
 * edgemq leniency, on purpose: application properties arrive from MQTT property bags as strings,
 * so a comparison between a number and a numeric string (`temperature > 30` with
 * `temperature=35`) compares numerically, and `'true'`/`'false'` compare with booleans.
 */
import { FUNCTIONS } from './functions.js'
import type { ComparisonOp, Expr, QueryValue, RoutableMessage } from './types.js'

/** Per-message evaluation context; the JSON body is parsed at most once. */
export class MessageScope {
  private bodyParsed = false
  private bodyValue: QueryValue = undefined

  constructor(readonly message: RoutableMessage) {}

  app(name: string): QueryValue {
    const props = this.message.properties
    if (Object.prototype.hasOwnProperty.call(props, name)) return props[name]
    // IoT Hub treats D2C property names case-insensitively ("We recommend using unique property names").
    const lower = name.toLowerCase()
    for (const [k, v] of Object.entries(props)) if (k.toLowerCase() === lower) return v
    return undefined
  }

  system(name: string, path: string[]): QueryValue {
    const m = this.message
    const sp = m.systemProperties
    switch (name) {
      case 'connectionDeviceId':
        return m.deviceId
      case 'connectionModuleId':
        return m.moduleId
      case 'outputName':
        return m.outputName ?? sp.outputName
      case 'enqueuedTime':
        return m.enqueuedTime
      case 'messageId':
      case 'correlationId':
      case 'userId':
      case 'to':
      case 'contentType':
      case 'contentEncoding':
      case 'expiryTimeUtc':
        return sp[name]
      case 'body':
        return walk(this.body(), path)
      default:
        return undefined
    }
  }

  /** The body as JSON, only when the message says it is JSON (routing query syntax: body queries need contentType application/json). */
  private body(): QueryValue {
    if (this.bodyParsed) return this.bodyValue
    this.bodyParsed = true
    const sp = this.message.systemProperties
    const ct = (sp.contentType ?? '').split(';')[0]?.trim().toLowerCase()
    const ce = (sp.contentEncoding ?? 'utf-8').toLowerCase().replace('-', '')
    if (ct !== 'application/json' || ce !== 'utf8') return undefined
    const b = this.message.body
    const text = typeof b === 'string' ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')
    try {
      this.bodyValue = JSON.parse(text) as QueryValue
    } catch {
      this.bodyValue = undefined
    }
    return this.bodyValue
  }
}

function walk(v: QueryValue, path: string[]): QueryValue {
  let cur = v
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined
    if (!Object.prototype.hasOwnProperty.call(cur, key)) return undefined
    cur = cur[key]
  }
  return cur
}

export function evaluate(expr: Expr, scope: MessageScope): QueryValue {
  switch (expr.type) {
    case 'literal':
      return expr.value
    case 'app':
      return scope.app(expr.name)
    case 'system':
      return scope.system(expr.name, expr.path)
    case 'call': {
      const spec = FUNCTIONS.get(expr.fn)
      return spec === undefined ? undefined : spec.call(expr.args.map((a) => evaluate(a, scope)))
    }
    case 'not': {
      const v = evaluate(expr.operand, scope)
      return typeof v === 'boolean' ? !v : undefined
    }
    case 'and': {
      const l = evaluate(expr.left, scope)
      if (l === false) return false
      const r = evaluate(expr.right, scope)
      if (r === false) return false
      return l === true && r === true ? true : undefined
    }
    case 'or': {
      const l = evaluate(expr.left, scope)
      if (l === true) return true
      const r = evaluate(expr.right, scope)
      if (r === true) return true
      return l === false && r === false ? false : undefined
    }
    case 'compare':
      return compare(expr.op, evaluate(expr.left, scope), evaluate(expr.right, scope))
  }
}

/** Bring a numeric string / boolean string to the other side's type (see file comment). */
function coerce(a: QueryValue, b: QueryValue): [QueryValue, QueryValue] {
  if (typeof a === 'number' && typeof b === 'string') return [a, numeric(b)]
  if (typeof a === 'string' && typeof b === 'number') return [numeric(a), b]
  if (typeof a === 'boolean' && typeof b === 'string') return [a, boolish(b)]
  if (typeof a === 'string' && typeof b === 'boolean') return [boolish(a), b]
  return [a, b]
}

function numeric(s: string): QueryValue {
  if (s.trim() === '') return undefined
  const n = Number(s)
  return Number.isFinite(n) ? n : undefined
}

function boolish(s: string): QueryValue {
  const l = s.toLowerCase()
  return l === 'true' ? true : l === 'false' ? false : undefined
}

export function compare(op: ComparisonOp, left: QueryValue, right: QueryValue): boolean | undefined {
  const [a, b] = coerce(left, right)
  if (a === undefined || b === undefined) return undefined
  const sameType = (typeof a === typeof b && a !== null && b !== null) || (a === null && b === null)
  if (!sameType) return undefined
  if (typeof a === 'object' && a !== null) return undefined // objects and arrays do not compare
  if (op === '=') return a === b
  if (op === '<>') return a !== b
  if (!((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string'))) return undefined
  switch (op) {
    case '<':
      return a < b
    case '>':
      return a > b
    case '<=':
      return a <= b
    case '>=':
      return a >= b
  }
}

/** True when the condition holds for the message (absent condition = always). */
export function conditionMatches(condition: Expr | undefined, scope: MessageScope): boolean {
  return condition === undefined || evaluate(condition, scope) === true
}
