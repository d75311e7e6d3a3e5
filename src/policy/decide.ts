/**
 * Per-client decisions (PROTOCOL.md §3), precompiled for the broker's hot path.
 *
 * For one client, a policy flattens into numbered filter entries (trie.ts): first the
 * built-in own-IoT-Hub topics (allow), then, for each statement whose identities match, in
 * document order, its deny filters then its allow filters (deny wins inside a statement).
 * The lowest-numbered entry matching a topic decides; none → default deny.
 *
 * The view consults the client's own trie (its own telemetry/C2D/module topics, filters with
 * variables resolved for this client, statements naming its client id) plus shared tries: the
 * `$iothub` built-ins (the same for every client) and the policy's variable-free filters for
 * `{{iot:identity}}` / `{{iot:device_id}}` / `{{iot:module_id}}` statements, so neither a large
 * policy nor the built-ins are rebuilt for every client that connects.
 *
 * `$` topics: user statements never apply to them (§3: "no client may publish to `$`-topics
 * other than its own `$iothub/…` requests, nor subscribe to `$`-topics other than its own
 * twin/method responses"), so for a `$` topic only the built-in entries count.
 */
import { BUILTIN_SLOTS, startsWithDollar, type CompiledStatement, type PlacedResource, type PolicyTables, type SharedClass } from './compiled.js'
import { identityIotHubTopics, SHARED_IOTHUB_TOPICS } from './builtin.js'
import { HASH, PLUS, resolveResource, type Segment } from './template.js'
import { isDollarTopic, topicFilterError, topicNameError } from './topic.js'
import { coverage, EntryTrie, firstMatch, NONE, type TrieNode } from './trie.js'
import { operationName, type Decision, type DecidingStatement, type Identity, type Operation } from './types.js'

/** Per-view decision cache bound; cleared wholesale when reached (hot topics refill it at once). */
const MAX_CACHED = 4096
const BUILTIN: DecidingStatement | null = null

/** Built-in entries: the identity's own topics from 0, the shared `$iothub` ones from here (all < BUILTIN_SLOTS). */
const SHARED_BUILTIN_FROM = 8

/** The shared `$iothub` built-ins, one trie per operation for every view of every policy. */
let sharedBuiltins: { publish: TrieNode; subscribe: TrieNode } | undefined
function sharedBuiltinRoots(): { publish: TrieNode; subscribe: TrieNode } {
  if (sharedBuiltins === undefined) {
    const pub = new EntryTrie()
    const sub = new EntryTrie()
    SHARED_IOTHUB_TOPICS.publish.forEach((segs, i) => pub.add(segs, SHARED_BUILTIN_FROM + i))
    SHARED_IOTHUB_TOPICS.subscribe.forEach((segs, i) => sub.add(segs, SHARED_BUILTIN_FROM + i))
    sharedBuiltins = { publish: pub.root, subscribe: sub.root }
  }
  return sharedBuiltins
}

function segmentsToString(segs: readonly Segment[]): string {
  return segs.map((s) => (s === PLUS ? '+' : s === HASH ? '#' : s)).join('/')
}

function label(s: CompiledStatement): string {
  return s.description ? `statement ${s.index} (${s.description})` : `statement ${s.index}`
}

/**
 * The policy as it applies to one client, with decision caches. Create through
 * `CompiledPolicy.forIdentity()`.
 */
export class IdentityPolicy {
  readonly identity: Readonly<Identity>
  private readonly policy: PolicyTables
  private readonly connectDecision: Decision
  private readonly pubRoots: readonly TrieNode[]
  private readonly subRoots: readonly TrieNode[]
  /** Made on the first decision: many clients only connect, or only publish (idle memory, issue 16). */
  private pubCache: Map<string, Decision> | undefined
  private subCache: Map<string, Decision> | undefined

  constructor(policy: PolicyTables, id: Identity) {
    this.policy = policy
    this.identity = Object.freeze({ ...id })
    const own = identityIotHubTopics(id)
    const pub = new EntryTrie()
    const sub = new EntryTrie()
    own.publish.forEach((segs, n) => pub.add(segs, n))
    own.subscribe.forEach((segs, n) => sub.add(segs, n))

    const isModule = id.moduleId !== undefined
    const cls: SharedClass = isModule ? 'modules' : 'devices'
    let connect: Decision | undefined
    for (const s of policy.statements) {
      let viaClass = false
      let viaId = false
      for (const m of s.identities) {
        if (m.kind === 'any' || m.kind === cls) viaClass = true
        else if (m.kind === 'exact' && m.clientId === id.clientId) viaId = true
      }
      if (!viaClass && !viaId) continue
      if (connect === undefined) connect = connectRule(s)
      for (const p of policy.placedByStatement[s.index]) {
        if (viaClass && p.template.fixed !== null) continue // in the shared trie
        const segs = resolveResource(p.template, id)
        if (segs === null || startsWithDollar(segs)) continue // needs {{iot:module_id}} on a device / `$` (never applies)
        if (p.operations.has('publish')) pub.add(segs, p.n)
        if (p.operations.has('subscribe')) sub.add(segs, p.n)
      }
    }
    const builtins = sharedBuiltinRoots()
    this.pubRoots = [pub.root, builtins.publish, policy.sharedTrie('any', 'publish').root, policy.sharedTrie(cls, 'publish').root]
    this.subRoots = [sub.root, builtins.subscribe, policy.sharedTrie('any', 'subscribe').root, policy.sharedTrie(cls, 'subscribe').root]
    // §3: mqtt:connect always needs an explicit allow.
    this.connectDecision = connect ?? { decision: 'deny', statement: null, reason: `no statement allows mqtt:connect for ${id.clientId}: default deny` }
  }

  canConnect(): boolean {
    return this.connectDecision.decision === 'allow'
  }

  canPublish(topic: string): boolean {
    return this.decidePublish(topic).decision === 'allow'
  }

  canSubscribe(filter: string): boolean {
    return this.decideSubscribe(filter).decision === 'allow'
  }

  decide(op: Operation, topic?: string): Decision {
    if (op === 'connect') return this.connectDecision
    if (topic === undefined) return { decision: 'deny', statement: null, reason: `${operationName(op)} needs a topic` }
    return op === 'publish' ? this.decidePublish(topic) : this.decideSubscribe(topic)
  }

  decidePublish(topic: string): Decision {
    const cache = (this.pubCache ??= new Map())
    let d = cache.get(topic)
    if (d === undefined) {
      d = this.computePublish(topic) // shared from the cache: Decision's fields are readonly
      if (cache.size >= MAX_CACHED) cache.clear()
      cache.set(topic, d)
    }
    return d
  }

  decideSubscribe(filter: string): Decision {
    const cache = (this.subCache ??= new Map())
    let d = cache.get(filter)
    if (d === undefined) {
      d = this.computeSubscribe(filter)
      if (cache.size >= MAX_CACHED) cache.clear()
      cache.set(filter, d)
    }
    return d
  }

  private computePublish(topic: string): Decision {
    const bad = topicNameError(topic)
    if (bad) return { decision: 'deny', statement: BUILTIN, reason: `invalid topic name ${JSON.stringify(topic)}: ${bad}` }
    const m = firstMatch(this.pubRoots, topic.split('/'))
    if (m < BUILTIN_SLOTS) {
      return { decision: 'allow', statement: BUILTIN, reason: `${topic} is ${this.identity.clientId}'s own IoT Hub topic: allowed without a rule` }
    }
    if (isDollarTopic(topic)) {
      return {
        decision: 'deny',
        statement: BUILTIN,
        reason: `${topic} is a $ topic: a client may publish only its own $iothub requests (twin GET, reported PATCH, method responses)`,
      }
    }
    if (m === NONE) return { decision: 'deny', statement: null, reason: `no statement allows mqtt:publish on ${topic} for ${this.identity.clientId}: default deny` }
    const p = this.placed(m)
    const filter = this.filterText(p)
    const via = filter === topic ? '' : ` (matches "${filter}")`
    const verb = p.allow ? 'allows' : 'denies'
    return { decision: p.allow ? 'allow' : 'deny', statement: statementRef(p.statement), reason: `${label(p.statement)} ${verb} mqtt:publish on ${topic}${via}` }
  }

  private computeSubscribe(filter: string): Decision {
    const bad = topicFilterError(filter)
    if (bad) return { decision: 'deny', statement: BUILTIN, reason: `invalid topic filter ${JSON.stringify(filter)}: ${bad}` }
    const f = filter.split('/')
    // Wildcards at the first level never reach `$` topics, so only a `$` literal puts us in `$` mode.
    const dollar = isDollarTopic(f[0])
    const allows = (n: number): boolean => n < BUILTIN_SLOTS || (!dollar && n !== NONE && this.placed(n).allow)
    const cov = coverage(this.subRoots, f, allows)
    const who = this.identity.clientId
    if (cov.witness === undefined) {
      const statements = new Map<number, CompiledStatement>()
      let builtinUsed = false
      for (const n of cov.allowedBy) {
        if (n < BUILTIN_SLOTS) builtinUsed = true
        else statements.set(this.placed(n).statement.index, this.placed(n).statement)
      }
      const ordered = [...statements.values()].sort((a, b) => a.index - b.index)
      if (ordered.length === 0) {
        return { decision: 'allow', statement: BUILTIN, reason: `${filter} covers only ${who}'s own IoT Hub topics: allowed without a rule` }
      }
      const parts = ordered.map(label)
      if (builtinUsed) parts.push(`${who}'s own IoT Hub topics`)
      const reason = parts.length === 1 ? `${parts[0]} allows mqtt:subscribe on ${filter}` : `every topic matched by ${filter} is allowed: ${parts.join(', ')}`
      return { decision: 'allow', statement: statementRef(ordered[0]), reason }
    }
    const { topic, entry } = cov.witness
    const suffix = topic === filter ? '' : ` (matched by "${filter}")`
    if (dollar) {
      return {
        decision: 'deny',
        statement: BUILTIN,
        reason: `${topic}${suffix} is a $ topic: a client may subscribe only to its own $iothub responses (twin res, desired PATCH, method POST)`,
      }
    }
    if (entry === NONE) {
      return { decision: 'deny', statement: null, reason: `no statement allows mqtt:subscribe on ${topic}${suffix} for ${who}: default deny` }
    }
    const s = this.placed(entry).statement
    return { decision: 'deny', statement: statementRef(s), reason: `${label(s)} denies mqtt:subscribe on ${topic}${suffix}` }
  }

  private placed(n: number): PlacedResource {
    return this.policy.placed[n - BUILTIN_SLOTS]
  }

  /** The filter as this client sees it (variables resolved), for reasons. */
  private filterText(p: PlacedResource): string {
    const segs = resolveResource(p.template, this.identity)
    return segs === null ? p.template.source : segmentsToString(segs)
  }
}

/** The first connect rule of a statement decides (deny rules first). */
function connectRule(s: CompiledStatement): Decision | undefined {
  for (const [rules, allow] of [[s.deny, false], [s.allow, true]] as const) {
    for (const rule of rules) {
      if (rule.operations.has('connect')) {
        return { decision: allow ? 'allow' : 'deny', statement: statementRef(s), reason: `${label(s)} ${allow ? 'allows' : 'denies'} mqtt:connect` }
      }
    }
  }
  return undefined
}

function statementRef(s: CompiledStatement): DecidingStatement {
  return s.description === undefined ? { index: s.index } : { index: s.index, description: s.description }
}
