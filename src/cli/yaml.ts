/**
 * JSON values as YAML the way az prints a monitor event for any `--output` other than json (PyYAML
 * `safe_dump(event, default_flow_style=False)`): block style, keys sorted, sequences not indented
 * under their key, a string quoted only when plain it would read as something else. Not a general
 * YAML writer: no line folding at 80 columns, non-ASCII text is kept as is, and a string with line
 * breaks or control characters is double-quoted with escapes (PyYAML folds it into a single-quoted block).
 */

/** What PyYAML's resolver would read as a bool, null, number or timestamp: such strings are quoted. */
const RESOLVES = [
  /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^(?:~|null|Null|NULL|)$/,
  /^[-+]?(?:0|[1-9][0-9_]*|0b[0-1_]+|0[0-7_]+|0x[0-9a-fA-F_]+|[1-9][0-9_]*(?::[0-5]?[0-9])+)$/,
  /^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?$|^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$/,
  /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?$/,
  /^(?:<<|=)$/,
]

function scalar(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) return JSON.stringify(s)
  const plain =
    !RESOLVES.some((re) => re.test(s)) &&
    !/^[,[\]{}#&*!|>'"%@`\s]/.test(s) &&
    !/^[-?:](?:\s|$)/.test(s) &&
    !/\s$/.test(s) &&
    !s.includes(': ') &&
    !s.includes(' #') &&
    !s.endsWith(':')
  return plain ? s : `'${s.replaceAll("'", "''")}'`
}

function leaf(v: unknown): string | undefined {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'string') return scalar(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v) && v.length === 0) return '[]'
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return '{}'
  return undefined
}

function lines(v: unknown, indent: string): string[] {
  const out: string[] = []
  if (Array.isArray(v)) {
    for (const item of v) {
      const l = leaf(item)
      if (l !== undefined) out.push(`${indent}- ${l}`)
      else {
        // The item's first line follows "- "; the rest are indented past it.
        const inner = lines(item, indent + '  ')
        out.push(`${indent}- ${inner[0].slice(indent.length + 2)}`, ...inner.slice(1))
      }
    }
    return out
  }
  const obj = v as Record<string, unknown>
  for (const key of Object.keys(obj).sort()) {
    const value = obj[key]
    const k = scalar(key)
    const l = leaf(value)
    if (l !== undefined) out.push(`${indent}${k}: ${l}`)
    else out.push(`${indent}${k}:`, ...lines(value, Array.isArray(value) ? indent : indent + '  '))
  }
  return out
}

/** `value` as PyYAML's `safe_dump(value, default_flow_style=False)` prints it (with its trailing newline). */
export function toYaml(value: unknown): string {
  const l = leaf(value)
  return (l !== undefined ? [l] : lines(value, '')).join('\n') + '\n'
}
