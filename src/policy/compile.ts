/**
 * Compile a validated policy once; resolve it per client in decide.ts.
 * Security behind one front door (STYLE.md, mosquitto): the broker only calls
 * `policy.forIdentity(id).canPublish(topic)` etc. and never sees statements.
 */
import { InvalidDocumentError } from '../errors.js'
import { BUILTIN_SLOTS, startsWithDollar, type CompiledStatement, type PlacedResource, type PolicyTables, type SharedClass } from './compiled.js'
import { IdentityPolicy } from './decide.js'
import { identityMatches } from './template.js'
import { EntryTrie } from './trie.js'
import type { Decision, Identity, Operation, PolicyIssue } from './types.js'
import { analyzePolicy } from './validate.js'

export type { CompiledRule, CompiledStatement } from './compiled.js'

/** Views are cached per identity; cleared wholesale past this many (a simple bound, no LRU bookkeeping). */
const MAX_VIEWS = 10_000

export class CompiledPolicy implements PolicyTables {
  readonly statements: readonly CompiledStatement[]
  /** Non-fatal findings (e.g. resources on a connect-only rule). */
  readonly warnings: readonly PolicyIssue[]
  /** Resources in evaluation order; entry number = BUILTIN_SLOTS + index. */
  readonly placed: readonly PlacedResource[]
  /** `placed`, grouped by statement index. */
  readonly placedByStatement: readonly (readonly PlacedResource[])[]
  private readonly views = new Map<string, IdentityPolicy>()
  private readonly shared = new Map<string, EntryTrie>()

  constructor(statements: CompiledStatement[], warnings: PolicyIssue[] = []) {
    this.statements = statements
    this.warnings = warnings
    const placed: PlacedResource[] = []
    this.placedByStatement = statements.map((statement) => {
      const mine: PlacedResource[] = []
      for (const [rules, allow] of [[statement.deny, false], [statement.allow, true]] as const) {
        for (const rule of rules) {
          for (const template of rule.resources) {
            const p = { n: BUILTIN_SLOTS + placed.length, allow, statement, operations: rule.operations, template }
            placed.push(p)
            mine.push(p)
          }
        }
      }
      return mine
    })
    this.placed = placed
  }

  /** Statements whose identities match this client, in document order. */
  statementsFor(id: Identity): CompiledStatement[] {
    return this.statements.filter((s) => s.identities.some((m) => identityMatches(m, id)))
  }

  /**
   * The trie of variable-free filters of the statements that name identity class `cls`, built
   * once and shared by every client view: a 1,000-statement policy is not rebuilt per client.
   */
  sharedTrie(cls: SharedClass, op: 'publish' | 'subscribe'): EntryTrie {
    const key = `${cls}:${op}`
    let trie = this.shared.get(key)
    if (trie === undefined) {
      trie = new EntryTrie()
      for (const s of this.statements) {
        if (!s.identities.some((m) => m.kind === cls)) continue
        for (const p of this.placedByStatement[s.index]) {
          if (p.template.fixed !== null && p.operations.has(op) && !startsWithDollar(p.template.fixed)) trie.add(p.template.fixed, p.n)
        }
      }
      this.shared.set(key, trie)
    }
    return trie
  }

  /**
   * The precompiled, caching view for one client. The broker should keep it on the session
   * (it is also cached here by identity).
   */
  forIdentity(id: Identity): IdentityPolicy {
    const key = `${id.clientId}\u0000${id.deviceId}\u0000${id.moduleId === undefined ? '\u0001' : id.moduleId}`
    let view = this.views.get(key)
    if (view === undefined) {
      if (this.views.size >= MAX_VIEWS) this.views.clear()
      view = new IdentityPolicy(this, { clientId: id.clientId, deviceId: id.deviceId, moduleId: id.moduleId })
      this.views.set(key, view)
    }
    return view
  }

  /** Decide one request (PROTOCOL.md §3). `topic` is the PUBLISH topic or the SUBSCRIBE filter. */
  decide(id: Identity, op: Operation, topic?: string): Decision {
    return this.forIdentity(id).decide(op, topic)
  }
}

/**
 * Validate and compile `mqttBroker.authorizations`.
 * @throws InvalidDocumentError (exit 2) with every error and its JSON path.
 */
export function compilePolicy(authorizations: unknown, opts: { basePath?: string } = {}): CompiledPolicy {
  const { issues, statements } = analyzePolicy(authorizations, opts.basePath)
  const errors = issues.filter((i) => i.severity === 'error')
  if (errors.length > 0) {
    const n = errors.length
    throw new InvalidDocumentError(
      `invalid authorization policy: ${n} error${n === 1 ? '' : 's'} (first: ${errors[0].path}: ${errors[0].message})`,
      errors.map(({ path, message }) => ({ path, message })),
      'fix every listed path; `edgemq policy validate <file>` checks a file offline',
    )
  }
  return new CompiledPolicy(statements, issues.filter((i) => i.severity === 'warning'))
}
