/**
 * Per-client decisions (PROTOCOL.md §3), precompiled for the broker's hot path.
 *
 * For one client, a policy flattens into an ordered list of (filter, effect) entries:
 * first the built-in own-IoT-Hub topics (allow), then, for each statement whose identities
 * match in document order, its deny filters then its allow filters (deny wins inside a
 * statement). The first entry matching a topic decides; none → default deny. Entries live in
 * a trie keyed by level; each node keeps the lowest entry number ending there, so a lookup
 * is a walk of the matching branches, not a scan of every statement.
 *
 * `$` topics: user statements never apply to them (§3: "no client may publish to `$`-topics
 * other than its own `$iothub/…` requests, nor subscribe to `$`-topics other than its own
 * twin/method responses"), so for a `$` topic only the built-in entries count.
 *
 * SUBSCRIBE (§3: "allowed only if every topic it can match is allowed"): `coverage` explores
 * the topics the filter can match, level by level, splitting a wildcard level into "each
 * literal some entry names here" plus one "any other level" class. Within a class every
 * topic meets exactly the same entries, so the search is exact: sound (never allows a filter
 * one of whose topics is denied) and complete, including unions across statements (allow
 * `a` in one statement and `a/+/#` in another → `a/#` is allowed; allow `a/+` alone → `a/#`
 * is not, since `a/#` also matches `a` and `a/b/c`). No conservative approximation is made.
 * It terminates because each step below a `#` consumes a level of every live entry.
 */
import type { CompiledPolicy, CompiledStatement } from './compile.js'
import { ownIotHubTopics } from './builtin.js'
import { HASH, PLUS, resolveResource, type Segment } from './template.js'
import { isDollarTopic, topicFilterError, topicNameError } from './topic.js'
import { operationName, type Decision, type DecidingStatement, type Identity, type Operation } from './types.js'

const NONE = Number.POSITIVE_INFINITY
/** Per-view decision cache bound; cleared wholesale when reached (hot topics refill it at once). */
const MAX_CACHED = 4096

interface Node {
  lit: Map<string, Node> | null
  plus: Node | null
  /** Lowest entry number of a filter ending exactly here. */
  end: number
  /** Lowest entry number of a filter `<this prefix>/#` (also matches the prefix itself). */
  hash: number
  /** Lowest entry number anywhere in this subtree (for pruning). */
  sub: number
}

interface Entry {
  allow: boolean
  /** The statement, or null for a built-in own-IoT-Hub rule. */
  statement: CompiledStatement | null
  /** The resolved filter; turned into text only for reasons. */
  segs: readonly Segment[]
}

function newNode(): Node {
  return { lit: null, plus: null, end: NONE, hash: NONE, sub: NONE }
}

function segmentsToString(segs: readonly Segment[]): string {
  return segs.map((s) => (s === PLUS ? '+' : s === HASH ? '#' : s)).join('/')
}

/** One operation's entries, in a trie. */
class EntryTrie {
  readonly root = newNode()
  readonly entries: Entry[] = []
  /** Entries below this number are built-ins (the only ones that apply to `$` topics). */
  builtins = 0

  add(segs: readonly Segment[], entry: Entry): void {
    const n = this.entries.length
    this.entries.push(entry)
    let node = this.root
    if (n < node.sub) node.sub = n
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]
      if (s === HASH) {
        if (n < node.hash) node.hash = n
        return
      }
      let next: Node | undefined
      if (s === PLUS) {
        next = node.plus ?? (node.plus = newNode())
      } else {
        node.lit ??= new Map()
        next = node.lit.get(s)
        if (next === undefined) node.lit.set(s, (next = newNode()))
      }
      node = next
      if (n < node.sub) node.sub = n
    }
    if (n < node.end) node.end = n
  }

  /** Lowest entry number matching a topic name (levels), or NONE. */
  firstMatch(levels: readonly string[]): number {
    return matchFrom(this.root, levels, 0, isDollarTopic(levels[0]), NONE)
  }
}

function matchFrom(node: Node, t: readonly string[], i: number, dollar: boolean, best: number): number {
  if (node.sub >= best) return best
  if (i === t.length) return Math.min(best, node.end, node.hash)
  const guarded = i === 0 && dollar // [MQTT-4.7.2-1] wildcards at the first level skip `$` topics
  if (!guarded && node.hash < best) best = node.hash
  const c = node.lit?.get(t[i])
  if (c !== undefined) best = matchFrom(c, t, i + 1, dollar, best)
  if (!guarded && node.plus !== null) best = matchFrom(node.plus, t, i + 1, dollar, best)
  return best
}

function label(s: CompiledStatement): string {
  return s.description ? `statement ${s.index} (${s.description})` : `statement ${s.index}`
}

const BUILTIN: DecidingStatement | null = null

/** Outcome of exploring a SUBSCRIBE filter. */
interface Coverage {
  /** Indices of the statements that allowed some of the filter's topics. */
  allowedBy: Set<number>
  builtinUsed: boolean
  /** A topic that is not allowed, and the entry that decided it (NONE = nothing matched). */
  witness?: { topic: string; entry: number }
}

/**
 * The policy as it applies to one client, with decision caches. Create through
 * `CompiledPolicy.forIdentity()`.
 */
export class IdentityPolicy {
  readonly identity: Readonly<Identity>
  private readonly connectDecision: Decision
  private readonly pub = new EntryTrie()
  private readonly sub = new EntryTrie()
  private readonly pubCache = new Map<string, Decision>()
  private readonly subCache = new Map<string, Decision>()

  constructor(policy: CompiledPolicy, id: Identity) {
    this.identity = Object.freeze({ ...id })
    const own = ownIotHubTopics(id)
    for (const segs of own.publish) this.pub.add(segs, { allow: true, statement: null, segs })
    for (const segs of own.subscribe) this.sub.add(segs, { allow: true, statement: null, segs })
    this.pub.builtins = this.pub.entries.length
    this.sub.builtins = this.sub.entries.length

    let connect: Decision | undefined
    for (const s of policy.statementsFor(id)) {
      for (let k = 0; k < 2; k++) {
        const allow = k === 1 // deny rules first (§3: deny wins inside a statement)
        for (const rule of allow ? s.allow : s.deny) {
          if (connect === undefined && rule.operations.has('connect')) {
            connect = Object.freeze({
              decision: allow ? 'allow' : 'deny',
              statement: statementRef(s),
              reason: `${label(s)} ${allow ? 'allows' : 'denies'} mqtt:connect`,
            } as const)
          }
          for (const op of ['publish', 'subscribe'] as const) {
            if (!rule.operations.has(op)) continue
            const trie = op === 'publish' ? this.pub : this.sub
            for (const r of rule.resources) {
              const segs = resolveResource(r, id)
              if (segs === null) continue // needs {{iot:module_id}}, client is a device
              if (typeof segs[0] === 'string' && isDollarTopic(segs[0])) continue // never applies (see header)
              trie.add(segs, { allow, statement: s, segs })
            }
          }
        }
      }
    }
    // §3: mqtt:connect always needs an explicit allow.
    this.connectDecision =
      connect ?? Object.freeze({ decision: 'deny', statement: null, reason: `no statement allows mqtt:connect for ${id.clientId}: default deny` })
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
    let d = this.pubCache.get(topic)
    if (d === undefined) {
      d = this.computePublish(topic) // shared from the cache: Decision's fields are readonly
      if (this.pubCache.size >= MAX_CACHED) this.pubCache.clear()
      this.pubCache.set(topic, d)
    }
    return d
  }

  decideSubscribe(filter: string): Decision {
    let d = this.subCache.get(filter)
    if (d === undefined) {
      d = this.computeSubscribe(filter)
      if (this.subCache.size >= MAX_CACHED) this.subCache.clear()
      this.subCache.set(filter, d)
    }
    return d
  }

  private computePublish(topic: string): Decision {
    const bad = topicNameError(topic)
    if (bad) return { decision: 'deny', statement: BUILTIN, reason: `invalid topic name ${JSON.stringify(topic)}: ${bad}` }
    const levels = topic.split('/')
    const m = this.pub.firstMatch(levels)
    const dollar = isDollarTopic(topic)
    if (m < this.pub.builtins) {
      return { decision: 'allow', statement: BUILTIN, reason: `${topic} is ${this.identity.clientId}'s own IoT Hub topic: allowed without a rule` }
    }
    if (dollar) {
      return {
        decision: 'deny',
        statement: BUILTIN,
        reason: `${topic} is a $ topic: a client may publish only its own $iothub requests (twin GET, reported PATCH, method responses)`,
      }
    }
    if (m === NONE) return { decision: 'deny', statement: null, reason: `no statement allows mqtt:publish on ${topic} for ${this.identity.clientId}: default deny` }
    const e = this.pub.entries[m]
    const s = e.statement as CompiledStatement
    const filter = segmentsToString(e.segs)
    const via = filter === topic ? '' : ` (matches "${filter}")`
    return { decision: e.allow ? 'allow' : 'deny', statement: statementRef(s), reason: `${label(s)} ${e.allow ? 'allows' : 'denies'} mqtt:publish on ${topic}${via}` }
  }

  private computeSubscribe(filter: string): Decision {
    const bad = topicFilterError(filter)
    if (bad) return { decision: 'deny', statement: BUILTIN, reason: `invalid topic filter ${JSON.stringify(filter)}: ${bad}` }
    const f = filter.split('/')
    // Wildcards at the first level never reach `$` topics, so only a `$` literal puts us in `$` mode.
    const dollar = isDollarTopic(f[0])
    const cov = coverage(this.sub, f, dollar)
    const who = this.identity.clientId
    if (cov.witness === undefined) {
      const first = cov.allowedBy.size > 0 ? Math.min(...cov.allowedBy) : undefined
      if (first === undefined) {
        return { decision: 'allow', statement: BUILTIN, reason: `${filter} covers only ${who}'s own IoT Hub topics: allowed without a rule` }
      }
      const parts = [...cov.allowedBy].sort((a, b) => a - b).map((i) => label(this.statementAt(i)))
      if (cov.builtinUsed) parts.push(`${who}'s own IoT Hub topics`)
      const s = this.statementAt(first)
      const reason =
        parts.length === 1
          ? `${label(s)} allows mqtt:subscribe on ${filter}`
          : `every topic matched by ${filter} is allowed: ${parts.join(', ')}`
      return { decision: 'allow', statement: statementRef(s), reason }
    }
    const { topic, entry } = cov.witness
    const suffix = topic === filter ? '' : ` (matched by "${filter}")`
    if (dollar && entry >= this.sub.builtins) {
      return {
        decision: 'deny',
        statement: BUILTIN,
        reason: `${topic}${suffix} is a $ topic: a client may subscribe only to its own $iothub responses (twin res, desired PATCH, method POST)`,
      }
    }
    if (entry === NONE) {
      return { decision: 'deny', statement: null, reason: `no statement allows mqtt:subscribe on ${topic}${suffix} for ${who}: default deny` }
    }
    const s = this.sub.entries[entry].statement as CompiledStatement
    return { decision: 'deny', statement: statementRef(s), reason: `${label(s)} denies mqtt:subscribe on ${topic}${suffix}` }
  }

  private statementAt(index: number): CompiledStatement {
    for (const e of this.sub.entries) if (e.statement !== null && e.statement.index === index) return e.statement
    throw new Error(`statement ${index} not in view`) // unreachable: indices come from entries
  }
}

function statementRef(s: CompiledStatement): DecidingStatement {
  return s.description === undefined ? { index: s.index } : { index: s.index, description: s.description }
}

/** A level name for the "any other level" class: not a literal any live entry names here. */
function freshLevel(taken: ReadonlySet<string>): string {
  if (!taken.has('x')) return 'x'
  for (let i = 1; ; i++) if (!taken.has(`x${i}`)) return `x${i}`
}

/**
 * Explore every topic `filter` can match against the trie (see the header). In `$` mode only
 * built-in entries may allow. Stops at the first topic that is not allowed.
 */
function coverage(trie: EntryTrie, f: readonly string[], dollar: boolean): Coverage {
  const out: Coverage = { allowedBy: new Set(), builtinUsed: false }
  const path: string[] = []

  const verdict = (m: number): boolean => {
    const allowed = m !== NONE && trie.entries[m].allow && (!dollar || m < trie.builtins)
    if (!allowed) {
      out.witness = { topic: path.join('/'), entry: m }
      return false
    }
    const s = trie.entries[m].statement
    if (s === null) out.builtinUsed = true
    else out.allowedBy.add(s.index)
    return true
  }

  /** Every remaining topic is decided by `m`: check it once, with a concrete example for the message. */
  const decideRest = (m: number, fi: number, depth: number): boolean => {
    const before = path.length
    for (let i = fi; i < f.length; i++) {
      if (f[i] === '#') {
        if (depth + (i - fi) === 0) path.push('x') // `#` alone needs at least one level
      } else path.push(f[i] === '+' ? 'x' : f[i])
    }
    const ok = verdict(m)
    path.length = before
    return ok
  }

  const walk = (nodes: Node[], absorbed: number, fi: number, depth: number): boolean => {
    let minSub = NONE
    for (const n of nodes) if (n.sub < minSub) minSub = n.sub
    // Nothing live can beat the entry already matching everything below: it decides all.
    if (absorbed <= minSub) return decideRest(absorbed, fi, depth)

    if (fi === f.length) {
      let m = absorbed
      for (const n of nodes) m = Math.min(m, n.end, n.hash)
      return verdict(m)
    }
    const level = f[fi]
    if (level !== '+' && level !== '#') return step(nodes, absorbed, level, fi + 1, depth)

    if (level === '#' && depth > 0) {
      // `a/#` matches `a` itself: the topic may end here.
      let m = absorbed
      for (const n of nodes) m = Math.min(m, n.end, n.hash)
      if (!verdict(m)) return false
    }
    const nextFi = level === '#' ? fi : fi + 1
    const taken = new Set<string>()
    for (const n of nodes) {
      if (n.lit === null) continue
      for (const k of n.lit.keys()) if (!(depth === 0 && isDollarTopic(k))) taken.add(k)
    }
    for (const k of taken) if (!step(nodes, absorbed, k, nextFi, depth)) return false
    return step(nodes, absorbed, null, nextFi, depth, freshLevel(taken))
  }

  /** Descend one topic level `v` (null = a level no entry names). */
  const step = (nodes: Node[], absorbed: number, v: string | null, fi: number, depth: number, shown?: string): boolean => {
    const guarded = depth === 0 && v !== null && isDollarTopic(v)
    const next: Node[] = []
    let abs = absorbed
    for (const n of nodes) {
      if (!guarded) {
        if (n.hash < abs) abs = n.hash
        if (n.plus !== null) next.push(n.plus)
      }
      if (v !== null) {
        const c = n.lit?.get(v)
        if (c !== undefined) next.push(c)
      }
    }
    path.push(v ?? (shown as string))
    const ok = walk(next, abs, fi, depth + 1)
    path.pop()
    return ok
  }

  walk([trie.root], NONE, 0, 0)
  return out
}
