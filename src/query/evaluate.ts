/**
 * Evaluates a parsed query over twin documents. IoT Hub's (Cosmos DB-derived) semantics: a
 * missing property is `undefined`, and a comparison with `undefined` or between values of
 * different types is `undefined` too, which WHERE treats as false. AND/OR are three-valued.
 */
import { AGGREGATES, type BinaryOp, type Expr, type JsonValue, type ParsedQuery } from './parse.js'

type Value = JsonValue | undefined
type JsonObject = { [k: string]: JsonValue }

function isObject(v: Value): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function typeOf(v: Value): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

function lookup(doc: JsonObject, segments: (string | number)[]): Value {
  let cur: Value = doc
  for (const [i, seg] of segments.entries()) {
    if (typeof seg === 'number') {
      if (!Array.isArray(cur)) return undefined
      cur = cur[seg]
      continue
    }
    if (!isObject(cur)) return undefined
    if (Object.prototype.hasOwnProperty.call(cur, seg)) {
      cur = cur[seg]
      continue
    }
    // The twin's own top-level fields match case-insensitively (the docs write `LastActivityTime`).
    if (i === 0) {
      const key = Object.keys(cur).find((k) => k.toLowerCase() === seg.toLowerCase())
      if (key === undefined) return undefined
      cur = cur[key]
      continue
    }
    return undefined
  }
  return cur
}

function deepEqual(a: Value, b: Value): boolean {
  if (a === b) return true
  if (typeOf(a) !== typeOf(b)) return false
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]))
  }
  return false
}

function compare(op: BinaryOp, a: Value, b: Value): boolean | undefined {
  if (a === undefined || b === undefined) return undefined
  const ta = typeOf(a)
  if (ta !== typeOf(b)) return undefined
  if (op === '=') return deepEqual(a, b)
  if (op === '!=') return !deepEqual(a, b)
  // Ordering is defined for numbers, strings (ordinal) and booleans only.
  if (ta !== 'number' && ta !== 'string' && ta !== 'boolean') return undefined
  const x = a as number | string | boolean
  const y = b as number | string | boolean
  switch (op) {
    case '<':
      return x < y
    case '>':
      return x > y
    case '<=':
      return x <= y
    default:
      return x >= y
  }
}

function arithmetic(op: BinaryOp, a: Value, b: Value): Value {
  if (typeof a !== 'number' || typeof b !== 'number') return undefined
  switch (op) {
    case '+':
      return a + b
    case '-':
      return a - b
    case '*':
      return a * b
    case '/':
      return b === 0 ? undefined : a / b
    default:
      return b === 0 ? undefined : a % b
  }
}

function str(v: Value): v is string {
  return typeof v === 'string'
}

function callFunction(name: string, args: Value[]): Value {
  const [a, b, c] = args
  switch (name) {
    case 'IS_DEFINED':
      return a !== undefined
    case 'IS_NULL':
      return a === null
    case 'IS_BOOL':
      return typeof a === 'boolean'
    case 'IS_NUMBER':
      return typeof a === 'number'
    case 'IS_STRING':
      return typeof a === 'string'
    case 'IS_OBJECT':
      return isObject(a)
    case 'IS_ARRAY':
      return Array.isArray(a)
    case 'IS_PRIMITIVE':
      return a === null || ['string', 'number', 'boolean'].includes(typeof a)
    case 'STARTSWITH':
      return str(a) && str(b) ? a.startsWith(b) : undefined
    case 'ENDSWITH':
      return str(a) && str(b) ? a.endsWith(b) : undefined
    case 'CONTAINS':
      return str(a) && str(b) ? a.includes(b) : undefined
    case 'LOWER':
      return str(a) ? a.toLowerCase() : undefined
    case 'UPPER':
      return str(a) ? a.toUpperCase() : undefined
    case 'LENGTH':
      return str(a) ? a.length : undefined
    case 'CONCAT':
      return args.every(str) ? args.join('') : undefined
    case 'SUBSTRING':
      return str(a) && typeof b === 'number' && typeof c === 'number' ? a.substr(b, c) : undefined
    case 'ABS':
      return typeof a === 'number' ? Math.abs(a) : undefined
    case 'CEILING':
      return typeof a === 'number' ? Math.ceil(a) : undefined
    case 'FLOOR':
      return typeof a === 'number' ? Math.floor(a) : undefined
    case 'ARRAY_LENGTH':
      return Array.isArray(a) ? a.length : undefined
    case 'ARRAY_CONTAINS':
      return Array.isArray(a) && b !== undefined ? a.some((x) => deepEqual(x, b)) : undefined
    default:
      return undefined
  }
}

export function evaluate(e: Expr, doc: JsonObject): Value {
  switch (e.kind) {
    case 'literal':
      return e.value
    case 'path':
      return lookup(doc, e.segments)
    case 'list': {
      const items = e.items.map((x) => evaluate(x, doc))
      return items.some((x) => x === undefined) ? undefined : (items as JsonValue[])
    }
    case 'not': {
      const v = evaluate(e.arg, doc)
      return typeof v === 'boolean' ? !v : undefined
    }
    case 'negate': {
      const v = evaluate(e.arg, doc)
      return typeof v === 'number' ? -v : undefined
    }
    case 'in': {
      const left = evaluate(e.left, doc)
      if (left === undefined || e.list.kind !== 'list') return undefined
      const found = e.list.items.some((item) => deepEqual(left, evaluate(item, doc)))
      return e.negated ? !found : found
    }
    case 'call':
      return callFunction(e.name, e.args.map((a) => evaluate(a, doc)))
    case 'binary': {
      if (e.op === 'AND' || e.op === 'OR') {
        const l = evaluate(e.left, doc)
        const r = evaluate(e.right, doc)
        const lb = typeof l === 'boolean' ? l : undefined
        const rb = typeof r === 'boolean' ? r : undefined
        if (e.op === 'AND') return lb === false || rb === false ? false : lb === true && rb === true ? true : undefined
        return lb === true || rb === true ? true : lb === false && rb === false ? false : undefined
      }
      const l = evaluate(e.left, doc)
      const r = evaluate(e.right, doc)
      if (['+', '-', '*', '/', '%'].includes(e.op)) return arithmetic(e.op, l, r)
      return compare(e.op, l, r)
    }
  }
}

function aggregate(name: string, arg: Expr | undefined, rows: JsonObject[]): Value {
  if (name === 'COUNT') return rows.length
  const nums = rows.map((r) => (arg ? evaluate(arg, r) : undefined)).filter((v): v is number => typeof v === 'number')
  if (nums.length === 0) return undefined
  switch (name) {
    case 'SUM':
      return nums.reduce((s, n) => s + n, 0)
    case 'AVG':
      return nums.reduce((s, n) => s + n, 0) / nums.length
    case 'MIN':
      return Math.min(...nums)
    default:
      return Math.max(...nums)
  }
}

function project(q: ParsedQuery, doc: JsonObject): JsonObject {
  const row: JsonObject = {}
  for (const item of q.items) {
    const v = evaluate(item.expr, doc)
    if (v !== undefined) row[item.name] = v
  }
  return row
}

/** All results of `q` over `docs` (already the FROM collection), in order; TOP applied. */
export function executeQuery(q: ParsedQuery, docs: JsonObject[]): JsonObject[] {
  const matched = q.where ? docs.filter((d) => evaluate(q.where as Expr, d) === true) : docs
  let rows: JsonObject[]
  if (!q.aggregated) {
    rows = q.star ? matched : matched.map((d) => project(q, d))
  } else {
    // One group per distinct tuple of GROUP BY values, in order of first appearance.
    const groups = new Map<string, JsonObject[]>()
    for (const d of matched) {
      const key = JSON.stringify(q.groupBy.map((g) => evaluate(g, d) ?? { $undefined: true }))
      const list = groups.get(key)
      if (list) list.push(d)
      else groups.set(key, [d])
    }
    // An aggregate over no rows (and no GROUP BY) is still one row: COUNT() = 0.
    if (groups.size === 0 && q.groupBy.length === 0) groups.set('', [])
    rows = [...groups.values()].map((members) => {
      const row: JsonObject = {}
      for (const item of q.items) {
        const v = item.expr.kind === 'call' && AGGREGATES.has(item.expr.name) ? aggregate(item.expr.name, item.expr.args[0], members) : members.length ? evaluate(item.expr, members[0]) : undefined
        if (v !== undefined) row[item.name] = v
      }
      return row
    })
  }
  return q.top === undefined ? rows : rows.slice(0, q.top)
}
