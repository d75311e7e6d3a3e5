/**
 * Topic-filter tries with first-match-wins entry numbers (PROTOCOL.md §3).
 *
 * Every filter of a policy has a number; a lower number comes first in evaluation order.
 * Each trie node keeps the lowest number of a filter ending there, so "which entry decides
 * this topic?" is a walk of the matching branches, not a scan of every statement. A client's
 * view consults several tries at once (its own entries plus ones shared by every client).
 *
 * SUBSCRIBE (§3: "allowed only if every topic it can match is allowed"): `coverage` explores
 * the topics a filter can match, level by level, splitting a wildcard level into "each literal
 * some live entry names here" plus one "any other level" class. Within a class every topic
 * meets exactly the same entries, so the search is exact: sound (never allows a filter one of
 * whose topics is denied) and complete, including unions across statements (allow `a` in one
 * statement and `a/+/#` in another → `a/#` is allowed; allow `a/+` alone → `a/#` is not,
 * since `a/#` also matches `a` and `a/b/c`). No conservative approximation is made. It
 * terminates because each step below a `#` consumes a level of every live entry; its cost
 * grows with the trie branches the filter reaches, and results are cached per filter.
 */
import { HASH, PLUS, type Segment } from './template.js'
import { isDollarTopic } from './topic.js'

/**
 * "No entry": larger than any entry number. A small integer (V8 Smi), not Infinity: every trie
 * node holds three of these, and a non-Smi number field costs a heap number per node.
 */
export const NONE = 0x3fff_ffff

export interface TrieNode {
  /**
   * The first literal child, kept inline: most nodes have one (a client's own topics are one
   * path each), and a Map per node was most of a policy view's memory per connection.
   */
  key: string | null
  child: TrieNode | null
  /** Literal children after the first. */
  lit: Map<string, TrieNode> | null
  plus: TrieNode | null
  /** Lowest entry number of a filter ending exactly here. */
  end: number
  /** Lowest entry number of a filter `<this prefix>/#` (also matches the prefix itself). */
  hash: number
  /** Lowest entry number anywhere in this subtree (for pruning). */
  sub: number
}

function newNode(): TrieNode {
  return { key: null, child: null, lit: null, plus: null, end: NONE, hash: NONE, sub: NONE }
}

/** The literal child `level` of `node`, if any. */
function literal(node: TrieNode, level: string): TrieNode | undefined {
  if (node.key === level) return node.child as TrieNode
  return node.lit === null ? undefined : node.lit.get(level)
}

/** Every literal level `node` has a child for. */
function literals(node: TrieNode): string[] {
  if (node.key === null) return []
  return node.lit === null ? [node.key] : [node.key, ...node.lit.keys()]
}

export class EntryTrie {
  readonly root: TrieNode = newNode()

  /** Add filter `segs` as entry `n` (a filter already present keeps the lower number). */
  add(segs: readonly Segment[], n: number): void {
    let node = this.root
    if (n < node.sub) node.sub = n
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]
      if (s === HASH) {
        if (n < node.hash) node.hash = n
        return
      }
      let next: TrieNode | undefined
      if (s === PLUS) {
        next = node.plus ?? (node.plus = newNode())
      } else {
        next = literal(node, s)
        if (next === undefined) {
          next = newNode()
          if (node.key === null) {
            node.key = s
            node.child = next
          } else {
            ;(node.lit ??= new Map()).set(s, next)
          }
        }
      }
      node = next
      if (n < node.sub) node.sub = n
    }
    if (n < node.end) node.end = n
  }
}

/** Lowest entry number among `roots` matching the topic name `levels`, or NONE. */
export function firstMatch(roots: readonly TrieNode[], levels: readonly string[]): number {
  const dollar = isDollarTopic(levels[0])
  let best = NONE
  for (const r of roots) best = matchFrom(r, levels, 0, dollar, best)
  return best
}

function matchFrom(node: TrieNode, t: readonly string[], i: number, dollar: boolean, best: number): number {
  if (node.sub >= best) return best
  if (i === t.length) return Math.min(best, node.end, node.hash)
  const guarded = i === 0 && dollar // [MQTT-4.7.2-1] wildcards at the first level skip `$` topics
  if (!guarded && node.hash < best) best = node.hash
  const c = literal(node, t[i])
  if (c !== undefined) best = matchFrom(c, t, i + 1, dollar, best)
  if (!guarded && node.plus !== null) best = matchFrom(node.plus, t, i + 1, dollar, best)
  return best
}

export interface Coverage {
  /** Entry numbers that decided (allowed) some of the filter's topics. */
  allowedBy: Set<number>
  /** The first topic found that is not allowed, and the entry that decided it (NONE = nothing matched). */
  witness?: { topic: string; entry: number }
}

/** A level name for the "any other level" class: not a literal any live entry names here. */
function freshLevel(taken: ReadonlySet<string>): string {
  if (!taken.has('x')) return 'x'
  for (let i = 1; ; i++) if (!taken.has(`x${i}`)) return `x${i}`
}

/**
 * Explore every topic the filter (levels `f`) can match; `allows(n)` says whether entry `n`
 * (or NONE) allows. Stops at the first topic that is not allowed.
 */
export function coverage(roots: readonly TrieNode[], f: readonly string[], allows: (n: number) => boolean): Coverage {
  const out: Coverage = { allowedBy: new Set() }
  const path: string[] = []

  const verdict = (m: number): boolean => {
    if (!allows(m)) {
      out.witness = { topic: path.join('/'), entry: m }
      return false
    }
    out.allowedBy.add(m)
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

  const endHere = (nodes: readonly TrieNode[], absorbed: number): number => {
    let m = absorbed
    for (const n of nodes) m = Math.min(m, n.end, n.hash)
    return m
  }

  const walk = (nodes: readonly TrieNode[], absorbed: number, fi: number, depth: number): boolean => {
    let minSub = NONE
    for (const n of nodes) if (n.sub < minSub) minSub = n.sub
    // Nothing live can beat the entry already matching everything below: it decides all.
    if (absorbed <= minSub) return decideRest(absorbed, fi, depth)
    if (fi === f.length) return verdict(endHere(nodes, absorbed))

    const level = f[fi]
    if (level !== '+' && level !== '#') return step(nodes, absorbed, level, fi + 1, depth)
    // `a/#` matches `a` itself: the topic may end here.
    if (level === '#' && depth > 0 && !verdict(endHere(nodes, absorbed))) return false
    const nextFi = level === '#' ? fi : fi + 1
    const taken = new Set<string>()
    for (const n of nodes) {
      for (const k of literals(n)) if (!(depth === 0 && isDollarTopic(k))) taken.add(k)
    }
    for (const k of taken) if (!step(nodes, absorbed, k, nextFi, depth)) return false
    return step(nodes, absorbed, null, nextFi, depth, freshLevel(taken))
  }

  /** Descend one topic level `v` (null = a level no entry names, shown as `shown`). */
  const step = (nodes: readonly TrieNode[], absorbed: number, v: string | null, fi: number, depth: number, shown?: string): boolean => {
    const guarded = depth === 0 && v !== null && isDollarTopic(v)
    const next: TrieNode[] = []
    let abs = absorbed
    for (const n of nodes) {
      if (!guarded) {
        if (n.hash < abs) abs = n.hash
        if (n.plus !== null) next.push(n.plus)
      }
      if (v !== null) {
        const c = literal(n, v)
        if (c !== undefined) next.push(c)
      }
    }
    path.push(v ?? (shown as string))
    const ok = walk(next, abs, fi, depth + 1)
    path.pop()
    return ok
  }

  walk(roots, NONE, 0, 0)
  return out
}
