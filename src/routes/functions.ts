/**
 * Names the condition language knows: system properties (`$…`) and built-in functions.
 * System property names: IoT Hub routing query syntax ("To query, use $connectionDeviceId", …)
 * and edgeHub's Routing.Core `SystemProperties`, plus `$outputName` (edgeHub module outputs).
 * Functions: a subset of IoT Hub's routing query built-ins (type checks and string functions).
 */
import type { QueryValue } from './types.js'

/** Canonical system property names (without `$`). `body` is `$body` / `$body.<path>`. */
export const SYSTEM_PROPERTIES = [
  'messageId',
  'correlationId',
  'userId',
  'to',
  'contentType',
  'contentEncoding',
  'connectionDeviceId',
  'connectionModuleId',
  'outputName',
  'enqueuedTime',
  'expiryTimeUtc',
  'body',
] as const

export type SystemPropertyKey = (typeof SYSTEM_PROPERTIES)[number]

const BY_LOWER = new Map<string, SystemPropertyKey>(SYSTEM_PROPERTIES.map((p) => [p.toLowerCase(), p]))

/** `contentType` for `contentType`, `ContentType`, …; undefined when unknown. */
export function canonicalSystemProperty(name: string): SystemPropertyKey | undefined {
  return BY_LOWER.get(name.toLowerCase())
}

export interface FunctionSpec {
  minArgs: number
  maxArgs: number
  /** The first argument must be a property reference (IS_DEFINED). */
  propertyArg?: boolean
  call(args: QueryValue[]): QueryValue
}

const str = (v: QueryValue): v is string => typeof v === 'string'

function stringPredicate(f: (s: string, p: string) => boolean): FunctionSpec {
  return { minArgs: 2, maxArgs: 2, call: ([s, p]) => (str(s) && str(p) ? f(s, p) : undefined) }
}

export const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map<string, FunctionSpec>([
  ['IS_DEFINED', { minArgs: 1, maxArgs: 1, propertyArg: true, call: ([v]) => v !== undefined }],
  ['IS_NULL', { minArgs: 1, maxArgs: 1, call: ([v]) => v === null }],
  ['IS_STRING', { minArgs: 1, maxArgs: 1, call: ([v]) => typeof v === 'string' }],
  ['IS_NUMBER', { minArgs: 1, maxArgs: 1, call: ([v]) => typeof v === 'number' }],
  ['IS_BOOL', { minArgs: 1, maxArgs: 1, call: ([v]) => typeof v === 'boolean' }],
  ['STARTS_WITH', stringPredicate((s, p) => s.startsWith(p))],
  ['ENDS_WITH', stringPredicate((s, p) => s.endsWith(p))],
  ['CONTAINS', stringPredicate((s, p) => s.includes(p))],
  ['LOWER', { minArgs: 1, maxArgs: 1, call: ([v]) => (str(v) ? v.toLowerCase() : undefined) }],
  ['UPPER', { minArgs: 1, maxArgs: 1, call: ([v]) => (str(v) ? v.toUpperCase() : undefined) }],
  ['LENGTH', { minArgs: 1, maxArgs: 1, call: ([v]) => (str(v) ? v.length : undefined) }],
  ['CONCAT', { minArgs: 2, maxArgs: Infinity, call: (args) => (args.every(str) ? args.join('') : undefined) }],
  [
    'AS_NUMBER',
    {
      minArgs: 1,
      maxArgs: 1,
      call: ([v]) => {
        if (typeof v === 'number') return v
        if (!str(v) || v.trim() === '') return undefined
        const n = Number(v)
        return Number.isFinite(n) ? n : undefined
      },
    },
  ],
])
