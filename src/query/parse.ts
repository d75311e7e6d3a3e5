/**
 * The IoT Hub query language over device and module twins (learn.microsoft.com
 * iot-hub-devguide-query-language): a hand-written tokenizer and recursive-descent parser.
 *   SELECT [TOP n] * | <item> [AS alias], …  FROM devices | devices.modules
 *   [WHERE <condition>] [GROUP BY <path>, …]
 * Keywords and function names are case-insensitive; property names are not. Errors carry the
 * 1-based position of the offending token.
 */
import { QueryParseError } from '../errors.js'

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue }

export type Expr =
  | { kind: 'literal'; value: JsonValue }
  | { kind: 'path'; segments: (string | number)[]; text: string }
  | { kind: 'list'; items: Expr[] }
  | { kind: 'not'; arg: Expr }
  | { kind: 'negate'; arg: Expr }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr }
  | { kind: 'in'; negated: boolean; left: Expr; list: Expr }
  | { kind: 'call'; name: string; args: Expr[] }

export type BinaryOp = 'AND' | 'OR' | '=' | '!=' | '<' | '>' | '<=' | '>=' | '+' | '-' | '*' | '/' | '%'

export interface SelectItem {
  expr: Expr
  /** The key in each result object: the alias, else the path's last segment, else `$<n>`. */
  name: string
}

export type QuerySourceName = 'devices' | 'devices.modules'

export interface ParsedQuery {
  top?: number
  /** `SELECT *`: whole twins (x-ms-item-type Twin); else projected rows (Raw). */
  star: boolean
  items: SelectItem[]
  from: QuerySourceName
  where?: Expr
  groupBy: Extract<Expr, { kind: 'path' }>[]
  /** Some select item is an aggregate (or GROUP BY is present): one row per group. */
  aggregated: boolean
}

/** Aggregates allowed in SELECT (IoT Hub: COUNT, AVG, SUM, MIN, MAX). */
export const AGGREGATES = new Set(['COUNT', 'AVG', 'SUM', 'MIN', 'MAX'])

/** Scalar functions and their arities (min, max). */
export const FUNCTIONS: Record<string, [number, number]> = {
  IS_DEFINED: [1, 1],
  IS_NULL: [1, 1],
  IS_BOOL: [1, 1],
  IS_NUMBER: [1, 1],
  IS_STRING: [1, 1],
  IS_OBJECT: [1, 1],
  IS_ARRAY: [1, 1],
  IS_PRIMITIVE: [1, 1],
  STARTSWITH: [2, 2],
  ENDSWITH: [2, 2],
  CONTAINS: [2, 2],
  LOWER: [1, 1],
  UPPER: [1, 1],
  LENGTH: [1, 1],
  CONCAT: [2, 16],
  SUBSTRING: [3, 3],
  ABS: [1, 1],
  CEILING: [1, 1],
  FLOOR: [1, 1],
  ARRAY_LENGTH: [1, 1],
  ARRAY_CONTAINS: [2, 2],
}

const KEYWORDS = new Set(['SELECT', 'TOP', 'FROM', 'WHERE', 'GROUP', 'BY', 'AS', 'AND', 'OR', 'NOT', 'IN', 'NIN', 'TRUE', 'FALSE', 'NULL'])

type TokenKind = 'ident' | 'keyword' | 'string' | 'number' | 'op' | 'end'
interface Token {
  kind: TokenKind
  /** Keywords upper-cased; identifiers as written; strings unescaped. */
  value: string
  /** 1-based character position in the query. */
  pos: number
}

const OPERATORS = ['<=', '>=', '!=', '<>', '=', '<', '>', '(', ')', '[', ']', ',', '.', '*', '+', '-', '/', '%']

// Sticky: matched at lastIndex, without copying the rest of the query for every token.
const NUMBER = /\d+(\.\d+)?([eE][+-]?\d+)?|\.\d+/y
const IDENT = /[A-Za-z_$][A-Za-z0-9_$]*/y

export function tokenize(sql: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < sql.length) {
    const c = sql[i]
    if (/\s/.test(c)) {
      i++
      continue
    }
    const pos = i + 1
    if (c === "'" || c === '"') {
      let s = ''
      let j = i + 1
      for (;;) {
        if (j >= sql.length) throw new QueryParseError(`unterminated string starting at position ${pos}`, pos)
        const ch = sql[j]
        if (ch === '\\' && j + 1 < sql.length) {
          const next = sql[j + 1]
          s += next === 'n' ? '\n' : next === 't' ? '\t' : next
          j += 2
          continue
        }
        if (ch === c) {
          // SQL-style doubled quote inside a string.
          if (sql[j + 1] === c) {
            s += c
            j += 2
            continue
          }
          break
        }
        s += ch
        j++
      }
      out.push({ kind: 'string', value: s, pos })
      i = j + 1
      continue
    }
    NUMBER.lastIndex = i
    const num = NUMBER.exec(sql)
    if (num) {
      out.push({ kind: 'number', value: num[0], pos })
      i += num[0].length
      continue
    }
    IDENT.lastIndex = i
    const ident = IDENT.exec(sql)
    if (ident) {
      const upper = ident[0].toUpperCase()
      out.push(KEYWORDS.has(upper) ? { kind: 'keyword', value: upper, pos } : { kind: 'ident', value: ident[0], pos })
      i += ident[0].length
      continue
    }
    const op = OPERATORS.find((o) => sql.startsWith(o, i))
    if (!op) throw new QueryParseError(`unexpected character '${c}' at position ${pos}`, pos)
    out.push({ kind: 'op', value: op === '<>' ? '!=' : op, pos })
    i += op.length
  }
  out.push({ kind: 'end', value: '', pos: sql.length + 1 })
  return out
}

function describe(t: Token): string {
  if (t.kind === 'end') return 'the end of the query'
  if (t.kind === 'string') return `'${t.value}'`
  return `'${t.value}'`
}

/** Nesting beyond this (parentheses, lists, NOT, unary minus) is refused rather than risking the stack. */
export const MAX_QUERY_DEPTH = 64

class Parser {
  private i = 0
  private depth = 0
  private readonly tokens: Token[]
  constructor(private readonly sql: string) {
    this.tokens = tokenize(sql)
  }

  private get peek(): Token {
    return this.tokens[this.i]
  }

  private next(): Token {
    return this.tokens[this.i++]
  }

  private fail(expected: string, t: Token = this.peek): never {
    throw new QueryParseError(`expected ${expected} at position ${t.pos}, found ${describe(t)}`, t.pos)
  }

  private isKeyword(k: string): boolean {
    return this.peek.kind === 'keyword' && this.peek.value === k
  }

  private isOp(o: string): boolean {
    return this.peek.kind === 'op' && this.peek.value === o
  }

  private keyword(k: string): void {
    if (!this.isKeyword(k)) this.fail(k)
    this.i++
  }

  private op(o: string): void {
    if (!this.isOp(o)) this.fail(`'${o}'`)
    this.i++
  }

  query(): ParsedQuery {
    this.keyword('SELECT')
    let top: number | undefined
    if (this.isKeyword('TOP')) {
      this.i++
      const t = this.next()
      if (t.kind !== 'number' || !/^\d+$/.test(t.value)) this.fail('a whole number after TOP', t)
      top = Number(t.value)
    }
    let star = false
    const items: SelectItem[] = []
    if (this.isOp('*')) {
      this.i++
      star = true
    } else {
      do {
        const start = this.peek
        const expr = this.expr(true)
        let name: string | undefined
        if (this.isKeyword('AS')) {
          this.i++
          const alias = this.next()
          if (alias.kind !== 'ident') this.fail('an alias name after AS', alias)
          name = alias.value
        }
        if (name === undefined && expr.kind === 'path') name = String(expr.segments[expr.segments.length - 1])
        if (expr.kind !== 'path' && expr.kind !== 'call' && name === undefined) {
          if (expr.kind === 'literal' || expr.kind === 'binary') name = `$${items.length + 1}`
          else this.fail('a property path, function or aggregate in SELECT', start)
        }
        items.push({ expr, name: name ?? `$${items.length + 1}` })
      } while (this.isOp(',') && this.next())
    }
    this.keyword('FROM')
    const fromTok = this.peek
    const src = this.next()
    if (src.kind !== 'ident' || src.value.toLowerCase() !== 'devices') this.fail("'devices' or 'devices.modules' after FROM", src)
    let from: QuerySourceName = 'devices'
    if (this.isOp('.')) {
      this.i++
      const sub = this.next()
      if (sub.kind === 'ident' && sub.value.toLowerCase() === 'modules') from = 'devices.modules'
      else if (sub.kind === 'ident' && sub.value.toLowerCase() === 'jobs') throw new QueryParseError(`devices.jobs (position ${fromTok.pos}) is not supported by edgemq: it has no jobs`, fromTok.pos)
      else this.fail("'modules' after 'devices.'", sub)
    }
    let where: Expr | undefined
    if (this.isKeyword('WHERE')) {
      this.i++
      where = this.expr(false)
    }
    const groupBy: Extract<Expr, { kind: 'path' }>[] = []
    if (this.isKeyword('GROUP')) {
      this.i++
      this.keyword('BY')
      do {
        const t = this.peek
        const e = this.primary(false)
        if (e.kind !== 'path') this.fail('a property path in GROUP BY', t)
        groupBy.push(e)
      } while (this.isOp(',') && this.next())
    }
    if (this.peek.kind !== 'end') this.fail(groupBy.length ? "',' or the end of the query" : 'WHERE, GROUP BY or the end of the query')
    const aggregated = groupBy.length > 0 || items.some((it) => it.expr.kind === 'call' && AGGREGATES.has(it.expr.name))
    if (aggregated && star) throw new QueryParseError('SELECT * cannot be used with GROUP BY; select the grouped properties and aggregates', 1)
    if (aggregated) {
      const keys = new Set(groupBy.map((g) => g.text))
      for (const it of items) {
        if (it.expr.kind === 'call' && AGGREGATES.has(it.expr.name)) continue
        if (it.expr.kind === 'path' && keys.has(it.expr.text)) continue
        throw new QueryParseError(`'${it.name}' in SELECT is neither an aggregate nor in GROUP BY`, 1)
      }
    }
    return { top, star, items, from, where, groupBy, aggregated }
  }

  /** `inSelect`: aggregates are allowed at the top of a select item. */
  expr(inSelect: boolean): Expr {
    return this.nested(() => this.or(inSelect))
  }

  private nested<T>(f: () => T): T {
    if (++this.depth > MAX_QUERY_DEPTH) throw new QueryParseError(`the query nests deeper than ${MAX_QUERY_DEPTH} levels at position ${this.peek.pos}`, this.peek.pos)
    try {
      return f()
    } finally {
      this.depth--
    }
  }

  private or(inSelect: boolean): Expr {
    let left = this.and(inSelect)
    while (this.isKeyword('OR')) {
      this.i++
      left = { kind: 'binary', op: 'OR', left, right: this.and(inSelect) }
    }
    return left
  }

  private and(inSelect: boolean): Expr {
    let left = this.not(inSelect)
    while (this.isKeyword('AND')) {
      this.i++
      left = { kind: 'binary', op: 'AND', left, right: this.not(inSelect) }
    }
    return left
  }

  private not(inSelect: boolean): Expr {
    if (this.isKeyword('NOT')) {
      this.i++
      return { kind: 'not', arg: this.nested(() => this.not(inSelect)) }
    }
    return this.comparison(inSelect)
  }

  private comparison(inSelect: boolean): Expr {
    const left = this.additive(inSelect)
    const t = this.peek
    if (t.kind === 'op' && ['=', '!=', '<', '>', '<=', '>='].includes(t.value)) {
      this.i++
      return { kind: 'binary', op: t.value as BinaryOp, left, right: this.additive(inSelect) }
    }
    if (this.isKeyword('IN') || this.isKeyword('NIN') || (this.isKeyword('NOT') && this.tokens[this.i + 1]?.kind === 'keyword' && this.tokens[this.i + 1].value === 'IN')) {
      let negated = this.next().value !== 'IN'
      if (this.isKeyword('IN') && negated) {
        this.i++ // NOT IN
        negated = true
      }
      const listTok = this.peek
      const list = this.primary(false)
      if (list.kind !== 'list') this.fail("a list '[…]' after IN", listTok)
      return { kind: 'in', negated, left, list }
    }
    return left
  }

  private additive(inSelect: boolean): Expr {
    let left = this.multiplicative(inSelect)
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.next().value as BinaryOp
      left = { kind: 'binary', op, left, right: this.multiplicative(inSelect) }
    }
    return left
  }

  private multiplicative(inSelect: boolean): Expr {
    let left = this.unary(inSelect)
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = this.next().value as BinaryOp
      left = { kind: 'binary', op, left, right: this.unary(inSelect) }
    }
    return left
  }

  private unary(inSelect: boolean): Expr {
    if (this.isOp('-')) {
      this.i++
      const arg = this.nested(() => this.unary(inSelect))
      return arg.kind === 'literal' && typeof arg.value === 'number' ? { kind: 'literal', value: -arg.value } : { kind: 'negate', arg }
    }
    return this.primary(inSelect)
  }

  private primary(inSelect: boolean): Expr {
    const t = this.next()
    switch (t.kind) {
      case 'string':
        return { kind: 'literal', value: t.value }
      case 'number':
        return { kind: 'literal', value: Number(t.value) }
      case 'keyword':
        if (t.value === 'TRUE') return { kind: 'literal', value: true }
        if (t.value === 'FALSE') return { kind: 'literal', value: false }
        if (t.value === 'NULL') return { kind: 'literal', value: null }
        return this.fail('a value, property or function', t)
      case 'op':
        if (t.value === '(') {
          const e = this.expr(false)
          this.op(')')
          return e
        }
        if (t.value === '[') {
          const items: Expr[] = []
          if (!this.isOp(']')) {
            do items.push(this.expr(false))
            while (this.isOp(',') && this.next())
          }
          this.op(']')
          return { kind: 'list', items }
        }
        return this.fail('a value, property or function', t)
      case 'ident':
        if (this.isOp('(')) return this.call(t, inSelect)
        return this.path(t)
      default:
        return this.fail('a value, property or function', t)
    }
  }

  private call(name: Token, inSelect: boolean): Expr {
    const upper = name.value.toUpperCase()
    this.op('(')
    const args: Expr[] = []
    if (!this.isOp(')')) {
      do args.push(this.expr(false))
      while (this.isOp(',') && this.next())
    }
    this.op(')')
    if (AGGREGATES.has(upper)) {
      if (!inSelect) throw new QueryParseError(`aggregate ${upper}() at position ${name.pos} is only allowed as a SELECT item`, name.pos)
      const want = upper === 'COUNT' ? 0 : 1
      if (args.length !== want) throw new QueryParseError(`${upper}() at position ${name.pos} takes ${want} argument${want === 1 ? '' : 's'}`, name.pos)
      return { kind: 'call', name: upper, args }
    }
    const arity = FUNCTIONS[upper]
    if (!arity) throw new QueryParseError(`unknown function ${name.value}() at position ${name.pos}`, name.pos)
    if (args.length < arity[0] || args.length > arity[1]) {
      throw new QueryParseError(`${upper}() at position ${name.pos} takes ${arity[0] === arity[1] ? arity[0] : `${arity[0]} to ${arity[1]}`} argument(s), got ${args.length}`, name.pos)
    }
    return { kind: 'call', name: upper, args }
  }

  /** `a.b.c`, `a['b-c']`, `a[0]`; any identifier or keyword may follow a dot (`tags.from`). */
  private path(first: Token): Expr {
    const segments: (string | number)[] = [first.value]
    let text = first.value
    for (;;) {
      if (this.isOp('.')) {
        this.i++
        const t = this.next()
        if (t.kind !== 'ident' && t.kind !== 'keyword') this.fail("a property name after '.'", t)
        // Keywords are upper-cased by the tokenizer: take the name as written.
        const name = t.kind === 'keyword' ? this.raw(t) : t.value
        segments.push(name)
        text += `.${name}`
      } else if (this.isOp('[')) {
        this.i++
        const t = this.next()
        if (t.kind === 'string') segments.push(t.value)
        else if (t.kind === 'number' && /^\d+$/.test(t.value)) segments.push(Number(t.value))
        else this.fail("a quoted property name or an index inside '[…]'", t)
        text += `[${JSON.stringify(segments[segments.length - 1])}]`
        this.op(']')
      } else {
        return { kind: 'path', segments, text }
      }
    }
  }

  private raw(t: Token): string {
    return this.sql.slice(t.pos - 1, t.pos - 1 + t.value.length)
  }
}

/** Parses an IoT Hub query; QueryParseError (exit 2, HTTP 400) with the position on bad input. */
export function parseQuery(sql: string): ParsedQuery {
  if (typeof sql !== 'string' || sql.trim() === '') throw new QueryParseError('the query is empty; write e.g. SELECT * FROM devices', 1)
  return new Parser(sql).query()
}
