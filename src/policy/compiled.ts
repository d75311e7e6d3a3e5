/**
 * The shapes of a compiled policy, shared by compile.ts (which builds them) and decide.ts /
 * validate.ts (which read them), so neither has to import compile.ts back.
 */
import type { EntryTrie } from './trie.js'
import type { IdentityMatcher, ResourceTemplate, Segment } from './template.js'
import { isDollarTopic } from './topic.js'
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

/** What a per-client view (decide.ts) reads from the compiled policy. */
export interface PolicyTables {
  readonly statements: readonly CompiledStatement[]
  /** Resources in evaluation order; entry number = BUILTIN_SLOTS + index. */
  readonly placed: readonly PlacedResource[]
  /** `placed`, grouped by statement index. */
  readonly placedByStatement: readonly (readonly PlacedResource[])[]
  /** The shared trie of variable-free filters of the statements naming identity class `cls`. */
  sharedTrie(cls: SharedClass, op: 'publish' | 'subscribe'): EntryTrie
}

/** User filters starting with a `$` literal never apply: §3 reserves `$` topics (see decide.ts). */
export function startsWithDollar(segs: readonly Segment[]): boolean {
  const first = segs[0]
  return typeof first === 'string' && isDollarTopic(first)
}
