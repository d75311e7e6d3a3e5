/**
 * Route parser: `[SELECT * ] FROM <source> [WHERE <condition>] INTO <sink>` (Azure/iotedge
 * Route.g4). Keywords are case-insensitive (GrammarLexer.g4 spells them letter by letter);
 * strings take single or double quotes with `\` escapes; `!=` and `<>` both mean "not equal".
 * Every error names what was wrong and the 1-based column where it was found.
 */
import { InvalidDocumentError } from '../errors.js'
import { FUNCTIONS, SYSTEM_PROPERTIES, canonicalSystemProperty } from './functions.js'
import type { ComparisonOp, Expr, Route, RouteSink, RouteSource } from './types.js'

/** A route that does not parse. `column` is 1-based in the route text. */
export class RouteSyntaxError extends InvalidDocumentError {
  readonly column: number
  readonly detail: string
  constructor(detail: string, column: number) {
    super(`invalid route: ${detail} (column ${column})`, [{ path: 'route', message: `${detail} (column ${column})` }])
    this.detail = detail
    this.column = column
  }
}

export const SUPPORTED_SOURCES =
  '/*, /messages/*, /messages/modules/*, /messages/modules/<m>/*, /messages/modules/<m>/outputs/*, /messages/modules/<m>/outputs/<o>'
export const SUPPORTED_SINKS = '$upstream, BrokeredEndpoint("/modules/<m>/inputs/<i>")'

// ---------------------------------------------------------------------------------------------
// Lexer (condition part)

type Tok =
  | { t: 'string'; v: string; col: number; end: number }
  | { t: 'number'; v: number; col: number; end: number }
  | { t: 'ident'; v: string; col: number; end: number }
  | { t: 'op'; v: ComparisonOp; col: number; end: number }
  | { t: '(' | ')' | ','; col: number; end: number }
  | { t: 'eof'; col: number; end: number }

const IDENT_START = /[A-Za-z_$]/
// Names may carry `-` and `.` (GrammarLexer's ID allows them; `$body.a.b` is a path).
const IDENT_PART = /[A-Za-z0-9_$.-]/

class Lexer {
  private pos: number
  private peeked: Tok | null = null

  constructor(
    private readonly text: string,
    start: number,
  ) {
    this.pos = start
  }

  peek(): Tok {
    if (this.peeked === null) this.peeked = this.scan()
    return this.peeked
  }

  next(): Tok {
    const t = this.peek()
    this.peeked = null
    return t
  }

  private scan(): Tok {
    const s = this.text
    while (this.pos < s.length && /\s/.test(s[this.pos] as string)) this.pos++
    // /* comments */ are hidden in GrammarLexer.g4; skip them too.
    if (s.startsWith('/*', this.pos)) {
      const close = s.indexOf('*/', this.pos + 2)
      if (close < 0) throw new RouteSyntaxError('unterminated comment', this.pos + 1)
      this.pos = close + 2
      return this.scan()
    }
    const start = this.pos
    const col = start + 1
    if (start >= s.length) return { t: 'eof', col, end: start }
    const c = s[start] as string
    const two = s.slice(start, start + 2)
    if (two === '<>' || two === '!=') return this.tok({ t: 'op', v: '<>', col, end: 0 }, 2)
    if (two === '<=' || two === '>=') return this.tok({ t: 'op', v: two as ComparisonOp, col, end: 0 }, 2)
    if (c === '=' || c === '<' || c === '>') return this.tok({ t: 'op', v: c as ComparisonOp, col, end: 0 }, 1)
    if (c === '(' || c === ')' || c === ',') return this.tok({ t: c, col, end: 0 }, 1)
    if (c === "'" || c === '"') return this.scanString(c)
    if (/[0-9]/.test(c) || (c === '-' && /[0-9.]/.test(s[start + 1] ?? '')) || (c === '.' && /[0-9]/.test(s[start + 1] ?? ''))) {
      return this.scanNumber()
    }
    if (IDENT_START.test(c)) {
      let end = start + 1
      while (end < s.length && IDENT_PART.test(s[end] as string)) end++
      return this.tok({ t: 'ident', v: s.slice(start, end), col, end: 0 }, end - start)
    }
    throw new RouteSyntaxError(`unexpected character '${c}'`, col)
  }

  private tok<T extends Tok>(t: T, len: number): T {
    this.pos += len
    t.end = this.pos
    return t
  }

  private scanString(quote: string): Tok {
    const s = this.text
    const start = this.pos
    let out = ''
    let i = start + 1
    for (;;) {
      if (i >= s.length) throw new RouteSyntaxError(`unterminated string starting with ${quote}`, start + 1)
      const ch = s[i] as string
      if (ch === quote) break
      if (ch === '\\') {
        const nx = s[i + 1]
        if (nx === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(s.slice(i + 2, i + 6), 16))
          i += 6
          continue
        }
        if (nx === '"' || nx === "'" || nx === '\\') {
          out += nx
          i += 2
          continue
        }
        throw new RouteSyntaxError(`invalid escape '\\${nx ?? ''}' in string`, i + 1)
      }
      out += ch
      i++
    }
    this.pos = i + 1
    return { t: 'string', v: out, col: start + 1, end: this.pos }
  }

  private scanNumber(): Tok {
    const s = this.text.slice(this.pos)
    const m = /^(?:0[xX][0-9a-fA-F]+|-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)/.exec(s)
    const col = this.pos + 1
    if (m === null) throw new RouteSyntaxError('malformed number', col)
    const text = m[0]
    const follow = s[text.length]
    if (follow !== undefined && /[A-Za-z_$]/.test(follow)) throw new RouteSyntaxError(`malformed number '${text}${follow}'`, col)
    return this.tok({ t: 'number', v: Number(text), col, end: 0 }, text.length)
  }
}

function describe(t: Tok): string {
  switch (t.t) {
    case 'eof':
      return 'end of route'
    case 'string':
      return `string '${t.v}'`
    case 'number':
      return `number ${t.v}`
    case 'ident':
    case 'op':
      return `'${t.v}'`
    default:
      return `'${t.t}'`
  }
}

function isKeyword(t: Tok, kw: string): boolean {
  return t.t === 'ident' && t.v.toUpperCase() === kw
}

// ---------------------------------------------------------------------------------------------
// Condition parser: OR < AND < NOT < comparison < primary (IoT Hub query precedence)

/** Deeper nesting than any real route; keeps a hostile route from overflowing the stack. */
const MAX_NESTING = 64

class ConditionParser {
  private depth = 0

  constructor(private readonly lx: Lexer) {}

  private nest<T>(col: number, f: () => T): T {
    if (++this.depth > MAX_NESTING) throw new RouteSyntaxError(`condition nested more than ${MAX_NESTING} levels deep`, col)
    try {
      return f()
    } finally {
      this.depth--
    }
  }

  parse(): Expr {
    return this.parseOr()
  }

  private parseOr(): Expr {
    let left = this.parseAnd()
    while (isKeyword(this.lx.peek(), 'OR')) {
      const op = this.lx.next()
      left = { type: 'or', left, right: this.parseAnd(), col: op.col }
    }
    return left
  }

  private parseAnd(): Expr {
    let left = this.parseNot()
    while (isKeyword(this.lx.peek(), 'AND')) {
      const op = this.lx.next()
      left = { type: 'and', left, right: this.parseNot(), col: op.col }
    }
    return left
  }

  private parseNot(): Expr {
    if (isKeyword(this.lx.peek(), 'NOT')) {
      const op = this.lx.next()
      return { type: 'not', operand: this.nest(op.col, () => this.parseNot()), col: op.col }
    }
    return this.parseComparison()
  }

  private parseComparison(): Expr {
    const left = this.parsePrimary()
    const t = this.lx.peek()
    if (t.t === 'op') {
      this.lx.next()
      const right = this.parsePrimary()
      const after = this.lx.peek()
      if (after.t === 'op') throw new RouteSyntaxError(`unexpected ${describe(after)}: comparisons do not chain; use AND`, after.col)
      return { type: 'compare', op: t.v, left, right, col: t.col }
    }
    return left
  }

  private parsePrimary(): Expr {
    const t = this.lx.next()
    switch (t.t) {
      case 'string':
        return { type: 'literal', value: t.v, col: t.col }
      case 'number':
        return { type: 'literal', value: t.v, col: t.col }
      case '(': {
        const inner = this.nest(t.col, () => this.parseOr())
        const close = this.lx.next()
        if (close.t !== ')') {
          throw new RouteSyntaxError(
            `unbalanced parentheses: '(' at column ${t.col} is not closed (found ${describe(close)})`,
            close.col,
          )
        }
        return inner
      }
      case ')':
        throw new RouteSyntaxError("unbalanced parentheses: ')' without a matching '('", t.col)
      case 'ident':
        return this.parseIdent(t)
      default:
        throw new RouteSyntaxError(`expected a value, property or function, found ${describe(t)}`, t.col)
    }
  }

  private parseIdent(t: Extract<Tok, { t: 'ident' }>): Expr {
    const upper = t.v.toUpperCase()
    if (upper === 'TRUE') return { type: 'literal', value: true, col: t.col }
    if (upper === 'FALSE') return { type: 'literal', value: false, col: t.col }
    if (upper === 'NULL') return { type: 'literal', value: null, col: t.col }
    if (upper === 'UNDEFINED') return { type: 'literal', value: undefined, col: t.col }
    if (['AND', 'OR', 'NOT', 'INTO', 'WHERE', 'FROM'].includes(upper)) {
      throw new RouteSyntaxError(`expected a value, property or function, found keyword ${upper}`, t.col)
    }
    if (this.lx.peek().t === '(') return this.parseCall(t)
    if (t.v.startsWith('$')) {
      const [head = '', ...path] = t.v.slice(1).split('.')
      const name = canonicalSystemProperty(head)
      if (name === undefined) {
        throw new RouteSyntaxError(`unknown system property '$${head}'; supported: ${SYSTEM_PROPERTIES.map((p) => `$${p}`).join(', ')}`, t.col)
      }
      if (path.length > 0 && name !== 'body') throw new RouteSyntaxError(`'$${name}' has no fields; only $body.<path> does`, t.col)
      if (path.some((p) => p === '')) throw new RouteSyntaxError(`empty segment in '${t.v}'`, t.col)
      return { type: 'system', name, path, col: t.col }
    }
    return { type: 'app', name: t.v, col: t.col }
  }

  private parseCall(nameTok: Extract<Tok, { t: 'ident' }>): Expr {
    const fn = nameTok.v.toUpperCase()
    const spec = FUNCTIONS.get(fn)
    if (spec === undefined) {
      throw new RouteSyntaxError(`unknown function '${nameTok.v}'; supported: ${[...FUNCTIONS.keys()].join(', ')}`, nameTok.col)
    }
    const open = this.lx.next() // '('
    const args: Expr[] = []
    if (this.lx.peek().t !== ')') {
      for (;;) {
        args.push(this.nest(nameTok.col, () => this.parseOr()))
        const sep = this.lx.peek()
        if (sep.t === ',') {
          this.lx.next()
          continue
        }
        break
      }
    }
    const close = this.lx.next()
    if (close.t !== ')') {
      throw new RouteSyntaxError(
        `unbalanced parentheses: '(' of ${fn} at column ${open.col} is not closed (found ${describe(close)})`,
        close.col,
      )
    }
    if (args.length < spec.minArgs || args.length > spec.maxArgs) {
      const want = spec.minArgs === spec.maxArgs ? `${spec.minArgs}` : spec.maxArgs === Infinity ? `at least ${spec.minArgs}` : `${spec.minArgs}-${spec.maxArgs}`
      throw new RouteSyntaxError(`${fn} takes ${want} argument(s), got ${args.length}`, nameTok.col)
    }
    if (spec.propertyArg === true && args[0] !== undefined && args[0].type !== 'app' && args[0].type !== 'system') {
      throw new RouteSyntaxError(`${fn} expects a property name`, args[0].col)
    }
    return { type: 'call', fn, args, col: nameTok.col }
  }
}

// ---------------------------------------------------------------------------------------------
// Route structure

function skipWs(text: string, pos: number): number {
  while (pos < text.length && /\s/.test(text[pos] as string)) pos++
  return pos
}

function readWord(text: string, pos: number): { word: string; start: number; end: number } {
  const start = skipWs(text, pos)
  let end = start
  while (end < text.length && !/\s/.test(text[end] as string)) end++
  return { word: text.slice(start, end), start, end }
}

/** A keyword (a run of letters), so `WHERE(a = 1)` reads as WHERE then `(`; else the word there. */
function readKeyword(text: string, pos: number): { word: string; start: number; end: number } {
  const start = skipWs(text, pos)
  const m = /^[A-Za-z]+/.exec(text.slice(start))
  return m === null ? readWord(text, start) : { word: m[0], start, end: start + m[0].length }
}

/** Parse a source path such as `/messages/modules/sensor/outputs/*`. */
export function parseSource(path: string, col = 1): RouteSource {
  const fail = (why: string): never => {
    throw new RouteSyntaxError(`${why}; supported sources: ${SUPPORTED_SOURCES}`, col)
  }
  if (path === '') fail('missing source after FROM')
  if (!path.startsWith('/')) fail(`source "${path}" must start with "/"`)
  const seg = path.slice(1).split('/')
  if (seg.some((s) => s === '')) fail(`source "${path}" has an empty segment`)
  const [a, b, c, d, e] = seg
  const n = seg.length
  if (n === 1 && a === '*') return { kind: 'all' }
  if (a === 'messages') {
    if (n === 2 && b === '*') return { kind: 'messages' }
    if (b === 'modules') {
      if (n === 3 && c === '*') return { kind: 'modules' }
      if (c !== undefined && c !== '*') {
        if (n === 4 && d === '*') return { kind: 'module', moduleId: c }
        if (n === 5 && d === 'outputs' && e === '*') return { kind: 'module-outputs', moduleId: c }
        if (n === 5 && d === 'outputs' && e !== undefined) return { kind: 'module-output', moduleId: c, outputName: e }
      }
    }
  }
  return fail(`unknown source "${path}"`)
}

/** Parse `$upstream` or `BrokeredEndpoint("/modules/<m>/inputs/<i>")` starting at `pos`. */
function parseSink(text: string, pos: number): { sink: RouteSink; end: number } {
  const start = skipWs(text, pos)
  const col = start + 1
  if (start >= text.length) throw new RouteSyntaxError(`missing sink after INTO; supported sinks: ${SUPPORTED_SINKS}`, col)
  if (text[start] === '$') {
    const { word, end } = readWord(text, start)
    if (word.toLowerCase() === '$upstream') return { sink: { kind: 'upstream' }, end }
    throw new RouteSyntaxError(`unknown sink "${word}"; supported sinks: ${SUPPORTED_SINKS}`, col)
  }
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(text.slice(start))
  if (m === null) {
    const { word } = readWord(text, start)
    throw new RouteSyntaxError(`unknown sink "${word}"; supported sinks: ${SUPPORTED_SINKS}`, col)
  }
  const fname = m[1] as string
  if (fname.toLowerCase() !== 'brokeredendpoint') {
    throw new RouteSyntaxError(`unknown sink function "${fname}"; supported sinks: ${SUPPORTED_SINKS}`, col)
  }
  const lx = new Lexer(text, start + m[0].length)
  const arg = lx.next()
  if (arg.t !== 'string') throw new RouteSyntaxError(`BrokeredEndpoint expects a quoted endpoint, found ${describe(arg)}`, arg.col)
  const close = lx.next()
  if (close.t !== ')') {
    throw new RouteSyntaxError(`unbalanced parentheses: BrokeredEndpoint( is not closed (found ${describe(close)})`, close.col)
  }
  const ep = /^\/modules\/([^/]+)\/inputs\/([^/]+)$/.exec(arg.v)
  if (ep === null) {
    throw new RouteSyntaxError(`invalid BrokeredEndpoint "${arg.v}": expected "/modules/<moduleId>/inputs/<input>"`, arg.col)
  }
  return { sink: { kind: 'module-input', moduleId: ep[1] as string, inputName: ep[2] as string }, end: close.end }
}

/** Parse one route. Throws RouteSyntaxError (an InvalidDocumentError) with the column. */
export function parseRoute(text: string): Route {
  let pos = 0
  let kw = readKeyword(text, pos)
  if (kw.word.toUpperCase() === 'SELECT') {
    const star = readWord(text, kw.end)
    if (star.word !== '*') throw new RouteSyntaxError(`expected '*' after SELECT, found "${star.word}"`, star.start + 1)
    kw = readKeyword(text, star.end)
  }
  if (kw.word.toUpperCase() !== 'FROM') {
    throw new RouteSyntaxError(
      kw.word === '' ? 'empty route; expected FROM <source> INTO <sink>' : `expected FROM, found "${kw.word}"`,
      kw.start + 1,
    )
  }
  const src = readWord(text, kw.end)
  const source = parseSource(src.word, src.start + 1)
  pos = src.end

  const next = readKeyword(text, pos)
  const nextKw = next.word.toUpperCase()
  let condition: Expr | undefined
  if (nextKw === 'WHERE') {
    const lx = new Lexer(text, next.end)
    if (isKeyword(lx.peek(), 'INTO') || lx.peek().t === 'eof') {
      throw new RouteSyntaxError('empty condition after WHERE', lx.peek().col)
    }
    condition = new ConditionParser(lx).parse()
    const into = lx.next()
    if (into.t === ')') throw new RouteSyntaxError("unbalanced parentheses: ')' without a matching '('", into.col)
    if (!isKeyword(into, 'INTO')) throw new RouteSyntaxError(`expected INTO or an operator, found ${describe(into)}`, into.col)
    pos = into.end
  } else if (nextKw === 'INTO') {
    pos = next.end
  } else {
    throw new RouteSyntaxError(
      next.word === '' ? 'missing INTO <sink>' : `expected WHERE or INTO after the source, found "${next.word}"`,
      next.start + 1,
    )
  }

  const { sink, end } = parseSink(text, pos)
  const rest = skipWs(text, end)
  if (rest < text.length) throw new RouteSyntaxError(`unexpected text after the sink: "${text.slice(rest)}"`, rest + 1)
  const route: Route = { text, source, sink }
  if (condition !== undefined) route.condition = condition
  return route
}

/** The sink as it is written in a route. */
export function formatSink(sink: RouteSink): string {
  return sink.kind === 'upstream' ? '$upstream' : `BrokeredEndpoint("/modules/${sink.moduleId}/inputs/${sink.inputName}")`
}

/** The source as it is written in a route. */
export function formatSource(source: RouteSource): string {
  switch (source.kind) {
    case 'all':
      return '/*'
    case 'messages':
      return '/messages/*'
    case 'modules':
      return '/messages/modules/*'
    case 'module':
      return `/messages/modules/${source.moduleId}/*`
    case 'module-outputs':
      return `/messages/modules/${source.moduleId}/outputs/*`
    case 'module-output':
      return `/messages/modules/${source.moduleId}/outputs/${source.outputName}`
  }
}
