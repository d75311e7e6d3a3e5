/** Output formats every data command shares: json (default, like az), table, tsv. */
export type OutputFormat = 'json' | 'table' | 'tsv'

function cell(v: unknown): string {
  if (v === undefined || v === null) return ''
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

/** Flattens one level of nesting so tables and tsv show `authentication.type`-style columns. */
function flatten(row: unknown, prefix = '', out: Record<string, unknown> = {}, depth = 0): Record<string, unknown> {
  if (row === null || typeof row !== 'object' || Array.isArray(row) || depth > 2) {
    out[prefix || 'value'] = row
    return out
  }
  for (const [k, v] of Object.entries(row as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 2) flatten(v, key, out, depth + 1)
    else out[key] = v
  }
  return out
}

export interface FormatOptions {
  /** Columns for table/tsv (default: every key of the first row). */
  columns?: string[]
}

export function formatOutput(data: unknown, format: OutputFormat, opts: FormatOptions = {}): string {
  if (format === 'json') return JSON.stringify(data, null, 2)
  // az's tsv prints bare values: a single-key object prints its value alone, for $(…).
  const rows = Array.isArray(data) ? data : [data]
  const flat = rows.map((r) => flatten(r))
  const columns = opts.columns ?? Object.keys(flat[0] ?? {})
  if (format === 'tsv') return flat.map((r) => columns.map((c) => cell(r[c])).join('\t')).join('\n')
  const widths = columns.map((c) => Math.max(c.length, ...flat.map((r) => Math.min(60, cell(r[c]).length))))
  const line = (vals: string[]) => vals.map((v, i) => (v.length > 60 ? v.slice(0, 59) + '…' : v).padEnd(widths[i])).join('  ').trimEnd()
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...flat.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n')
}
