/**
 * az's three-state flags (knack `get_three_state_flag`): `--ee`, `--ee true` and `--ee false` all
 * parse. oclif booleans take no value, so before parsing, `--flag true|false` (or `--flag=…`) on a
 * boolean flag becomes `--flag` or `--no-flag` (or nothing, for a flag without a `--no-` form).
 */
interface BooleanLike {
  type: string
  aliases?: string[]
  char?: string
  allowNo?: boolean
}

export function normalizeThreeState(argv: string[], flags: Record<string, BooleanLike>): string[] {
  const byName = new Map<string, [string, BooleanLike]>()
  for (const [name, def] of Object.entries(flags)) {
    if (def.type !== 'boolean') continue
    for (const n of [name, ...(def.aliases ?? [])]) byName.set(`--${n}`, [name, def])
    if (def.char) byName.set(`-${def.char}`, [name, def])
  }
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]
    if (token === '--') {
      out.push(...argv.slice(i))
      break
    }
    const eq = token.startsWith('--') ? token.indexOf('=') : -1
    const flag = eq > 0 ? token.slice(0, eq) : token
    const hit = byName.get(flag)
    const value = eq > 0 ? token.slice(eq + 1) : argv[i + 1]
    if (!hit || value === undefined || !/^(true|false)$/i.test(value)) {
      out.push(token)
      continue
    }
    const [name, def] = hit
    if (/^true$/i.test(value)) out.push(`--${name}`)
    else if (def.allowNo) out.push(`--no-${name}`)
    if (eq < 0) i++
  }
  return out
}

/**
 * az's `nargs="*"` flags that mean something bare (monitor-events `--props` alone = all): a flag in
 * `names` followed by nothing or by another flag gets `value`.
 */
export function defaultBareValue(argv: string[], names: string[], value: string): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    out.push(argv[i])
    if (argv[i] === '--') {
      out.push(...argv.slice(i + 1))
      break
    }
    const next = argv[i + 1]
    if (names.includes(argv[i]) && (next === undefined || next.startsWith('-'))) out.push(value)
  }
  return out
}
