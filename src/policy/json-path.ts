/** JSON paths for validation messages: `mqttBroker.authorizations[2].allow[0].operations[0]`. */

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** Append an object key to a path; odd keys are quoted (`routes["my route"]`). */
export function pathKey(base: string, key: string): string {
  if (IDENT.test(key)) return base === '' ? key : `${base}.${key}`
  return `${base}[${JSON.stringify(key)}]`
}

/** Append an array index to a path. */
export function pathIndex(base: string, index: number): string {
  return `${base}[${index}]`
}

/** A short description of a wrong value for messages: `an array`, `string "x"`, `null`. */
export function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return 'an object'
  const text = JSON.stringify(v) ?? String(v)
  return `${typeof v} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`
}
