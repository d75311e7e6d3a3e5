/**
 * IoT Hub queries over device and module twins, paged as the REST API pages them:
 * `x-ms-max-item-count` items per page, an opaque `x-ms-continuation` token for the next page
 * (absent on the last), `x-ms-item-type` Twin for `SELECT *`, Raw for projections and aggregates.
 */
import { createHash } from 'node:crypto'

import { UsageError } from '../errors.js'
import { executeQuery } from './evaluate.js'
import { parseQuery, type JsonValue, type ParsedQuery, type QuerySourceName } from './parse.js'

export { parseQuery, tokenize, type ParsedQuery, type QuerySourceName, type JsonValue } from './parse.js'
export { executeQuery, evaluate } from './evaluate.js'

export type QueryDocument = { [k: string]: JsonValue }

/** Where the twins come from (the registry + twin store, in FROM's order: by device, then module). */
export interface QuerySource {
  twins(from: QuerySourceName): Promise<QueryDocument[]>
}

export interface QueryOptions {
  /** Page size (x-ms-max-item-count, so a header's string too); default 100, at most 1000 as on IoT Hub. */
  pageSize?: number | string
  /** The token a previous page answered with. */
  continuationToken?: string
}

export interface QueryPage {
  items: QueryDocument[]
  /** 'Twin' for `SELECT *`, 'Raw' otherwise (IoT Hub's QueryResultType). */
  itemType: 'Twin' | 'Raw'
  /** Set when more results follow. */
  continuationToken?: string
}

export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 1000

function queryHash(sql: string): string {
  return createHash('sha256').update(sql).digest('base64url').slice(0, 12)
}

/** The token names the query it belongs to, so a token replayed with another query is refused. */
function encodeToken(sql: string, offset: number): string {
  return Buffer.from(JSON.stringify({ q: queryHash(sql), o: offset })).toString('base64url')
}

function decodeToken(sql: string, token: string): number {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
  } catch {
    parsed = undefined
  }
  const t = parsed as { q?: unknown; o?: unknown } | undefined
  if (!t || typeof t.o !== 'number' || !Number.isInteger(t.o) || t.o < 0 || t.q !== queryHash(sql)) {
    throw new UsageError('the continuation token is not one this hub issued for this query', 'run the query again without a continuation token')
  }
  return t.o
}

export function pageSizeOf(value: number | string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_PAGE_SIZE
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`page size (x-ms-max-item-count) must be a whole number from 1 to ${MAX_PAGE_SIZE}, got "${String(value)}"`)
  return Math.min(n, MAX_PAGE_SIZE)
}

/** Runs `sql` over `source`, one page at a time. QueryParseError on bad SQL (exit 2, HTTP 400). */
export async function runQuery(source: QuerySource, sql: string, opts: QueryOptions = {}): Promise<QueryPage> {
  const q: ParsedQuery = parseQuery(sql)
  const offset = opts.continuationToken ? decodeToken(sql, opts.continuationToken) : 0
  const size = pageSizeOf(opts.pageSize)
  const all = executeQuery(q, await source.twins(q.from))
  const items = all.slice(offset, offset + size)
  const next = offset + size
  return { items, itemType: q.star ? 'Twin' : 'Raw', ...(next < all.length ? { continuationToken: encodeToken(sql, next) } : {}) }
}

/** Every result (`hub query`), at most `top`, following continuation tokens page by page. */
export async function collectPages(fetchPage: (continuationToken: string | undefined) => Promise<QueryPage>, opts: { top?: number } = {}): Promise<QueryDocument[]> {
  const out: QueryDocument[] = []
  let token: string | undefined
  do {
    const page = await fetchPage(token)
    out.push(...page.items)
    token = page.continuationToken
  } while (token && (opts.top === undefined || out.length < opts.top))
  return opts.top === undefined ? out : out.slice(0, opts.top)
}

/** Every result of `sql` over `source`, at most `top`. */
export function queryAll(source: QuerySource, sql: string, opts: { top?: number } = {}): Promise<QueryDocument[]> {
  return collectPages((continuationToken) => runQuery(source, sql, { pageSize: MAX_PAGE_SIZE, continuationToken }), opts)
}
