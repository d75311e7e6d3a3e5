/**
 * The shapes of a compiled policy, shared by the compiler (compile.ts), the validator
 * (validate.ts) and the per-client decisions (decide.ts), so none of them imports another's module.
 */
import type { IdentityMatcher, ResourceTemplate, Segment } from './template.js'
import { isDollarTopic } from './topic.js'
import type { EntryTrie } from './trie.js'
import type { Operation } from './types.js'

export interface CompiledRule {
  operations: ReadonlySet<Operation>
  resources: readonly ResourceTemplate[]
}

export interface CompiledStatement {
  index: number
  description?: string
  identities: readonly IdentityMatcher[]
  deny: readonly CompiledRule[]
  allow: readonly CompiledRule[]
}

/**
 * Entry numbers below this are a client's built-in own-IoT-Hub filters (at most 6 per
 * operation); policy resources are numbered from here in evaluation order.
 */
export const BUILTIN_SLOTS = 16

/** Identity classes whose fixed (variable-free) filters are shared by every client of the class. */
export type SharedClass = 'any' | 'devices' | 'modules'

/** One resource of one rule, numbered in evaluation order: statements in document order, deny rules before allow rules. */
export interface PlacedResource {
  n: number
  allow: boolean
  statement: CompiledStatement
  operations: ReadonlySet<Operation>
  template: ResourceTemplate
}

/** User filters starting with a `$` literal never apply: §3 reserves `$` topics (see decide.ts). */
export function startsWithDollar(segs: readonly Segment[]): boolean {
  const first = segs[0]
  return typeof first === 'string' && isDollarTopic(first)
}

/** What a per-client view reads from the compiled policy. */
export interface PolicyTables {
  readonly statements: readonly CompiledStatement[]
  /** Resources in evaluation order; entry number = BUILTIN_SLOTS + index. */
  readonly placed: readonly PlacedResource[]
  readonly placedByStatement: readonly (readonly PlacedResource[])[]
  sharedTrie(cls: SharedClass, op: 'publish' | 'subscribe'): EntryTrie
}
