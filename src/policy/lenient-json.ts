/**
 * JSON parsing that tolerates trailing commas and comments, because the seed's own
 * `$edgeHub` sample has trailing commas (PRODUCT.md "Edge hub configuration",
 * PROTOCOL.md §3 "Fixtures"). Every other syntax error is reported with line and column.
 */
import { parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser'
import { InvalidDocumentError, type DocumentIssue } from '../errors.js'

/** JSON value as produced by the parser. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }
export type JsonObject = { [key: string]: JsonValue }

const HINTS: Partial<Record<string, string>> = {
  InvalidSymbol: 'remove the stray character',
  InvalidNumberFormat: 'write numbers as plain JSON numbers',
  PropertyNameExpected: 'property names must be in double quotes',
  ValueExpected: 'a value (string, number, object, array, true, false, null) is missing here',
  ColonExpected: 'put a colon between the property name and its value',
  CommaExpected: 'a comma is missing between two entries',
  CloseBraceExpected: 'an object is not closed with }',
  CloseBracketExpected: 'an array is not closed with ]',
  EndOfFileExpected: 'there is extra text after the document; keep one top-level value',
  InvalidCommentToken: 'close the /* comment */',
  UnexpectedEndOfComment: 'close the /* comment */',
  UnexpectedEndOfString: 'close the string with a double quote',
  UnexpectedEndOfNumber: 'the number is cut short',
  InvalidUnicode: 'fix the \\u escape (4 hex digits)',
  InvalidEscapeCharacter: 'fix the backslash escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)',
  InvalidCharacter: 'control characters must be escaped inside strings',
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

/**
 * Parse `text` as JSON with trailing commas and comments allowed.
 * @throws InvalidDocumentError (exit 2) listing every syntax error as `line L, column C`.
 */
export function parseLenientJson(text: string, what = 'document'): JsonValue {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text // editors on Windows add a BOM
  if (body.trim().length === 0) {
    throw new InvalidDocumentError(`${what} is empty`, [{ path: '', message: 'the document is empty; expected a JSON object' }])
  }
  const errors: ParseError[] = []
  const tree = parseTree(body, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false })
  if (errors.length > 0) {
    const issues: DocumentIssue[] = errors.map((e) => {
      const { line, column } = lineColumn(body, e.offset)
      const code = printParseErrorCode(e.error)
      const hint = HINTS[code]
      return { path: `line ${line}, column ${column}`, message: hint ? `${code}: ${hint}` : code }
    })
    const first = issues[0]
    throw new InvalidDocumentError(`${what} is not valid JSON (${first.path}: ${first.message})`, issues)
  }
  return tree === undefined ? null : toValue(tree)
}

/**
 * Tree → value with own properties only: a key "__proto__" stays a plain key instead of
 * replacing the object's prototype (jsonc-parser's own `parse` assigns with `obj[key] =`).
 * Duplicate keys: the last one wins, as in JSON.parse.
 */
function toValue(node: Node): JsonValue {
  switch (node.type) {
    case 'object': {
      const o: JsonObject = {}
      for (const prop of node.children ?? []) {
        const [k, v] = prop.children ?? []
        if (k === undefined || typeof k.value !== 'string') continue
        Object.defineProperty(o, k.value, { value: v === undefined ? null : toValue(v), enumerable: true, writable: true, configurable: true })
      }
      return o
    }
    case 'array':
      return (node.children ?? []).map(toValue)
    case 'string':
    case 'number':
    case 'boolean':
      return node.value as string | number | boolean
    default:
      return null
  }
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
