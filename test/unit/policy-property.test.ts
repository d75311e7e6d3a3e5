// Property test: random policies × random requests against a tiny reference model written
// independently from src/policy (PROTOCOL.md §3). Subscribe coverage is checked by brute force
// over a finite topic universe: every literal level that occurs in the instantiated policy or
// the filter, plus one fresh level "z", at every depth up to (deepest filter + 1). Any topic
// outside that universe behaves exactly like one inside it (replace unknown levels by "z",
// cut it at that depth), so "every topic the filter matches is allowed" is decided exactly.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { compilePolicy, type AuthorizationRule, type AuthorizationStatement, type Identity, type Operation } from '../../src/policy/index.js'

// ------------------------------------------------------------------ reference model

function refMatch(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  const go = (i: number): boolean => {
    if (i === f.length) return i === t.length
    if (f[i] === '#') return true
    if (i === t.length) return false
    return (f[i] === '+' || f[i] === t[i]) && go(i + 1)
  }
  return go(0)
}

function refIdentityMatches(entry: string, who: Identity): boolean {
  if (entry === '{{iot:identity}}' || entry === '{{mqtt:client_id}}') return true
  if (entry === '{{iot:device_id}}') return who.moduleId === undefined
  if (entry === '{{iot:module_id}}') return who.moduleId !== undefined
  return entry === who.clientId
}

/** Test ids never contain +, # or {{, so plain string substitution is faithful here. */
function refResources(rule: AuthorizationRule, who: Identity): string[] {
  const out: string[] = []
  for (const r of rule.resources ?? []) {
    if (r.includes('{{iot:module_id}}') && who.moduleId === undefined) continue
    out.push(
      r
        .replaceAll('{{iot:identity}}', who.clientId)
        .replaceAll('{{mqtt:client_id}}', who.clientId)
        .replaceAll('{{iot:device_id}}', who.deviceId)
        .replaceAll('{{iot:module_id}}', who.moduleId ?? ''),
    )
  }
  return out
}

interface RefDecision {
  allow: boolean
  statement: number | null
}

/** The decision for one topic (or for connect): first statement with a matching rule, deny rules first. */
function refDecide(policy: AuthorizationStatement[], who: Identity, op: Operation, topic: string | undefined): RefDecision {
  if (topic !== undefined && topic.startsWith('$')) return { allow: false, statement: null }
  for (let i = 0; i < policy.length; i++) {
    const s = policy[i]
    if (!s.identities.some((e) => refIdentityMatches(e, who))) continue
    for (const [rules, allow] of [[s.deny ?? [], false], [s.allow ?? [], true]] as const) {
      for (const rule of rules) {
        if (!rule.operations.includes(`mqtt:${op}`)) continue
        if (op === 'connect' || refResources(rule, who).some((f) => refMatch(f, topic as string))) return { allow, statement: i }
      }
    }
  }
  return { allow: false, statement: null }
}

/** Subscribe: brute force over the finite universe described at the top of the file. */
function refSubscribe(policy: AuthorizationStatement[], who: Identity, filter: string): RefDecision {
  const filters = [filter]
  for (const s of policy) for (const r of [...(s.allow ?? []), ...(s.deny ?? [])]) filters.push(...refResources(r, who))
  const alphabet = new Set<string>(['z'])
  let depth = 0
  for (const f of filters) {
    const levels = f.split('/')
    depth = Math.max(depth, levels.length)
    for (const l of levels) if (l !== '+' && l !== '#') alphabet.add(l)
  }
  const letters = [...alphabet]
  let lowest: number | null = null
  let ok = true
  const visit = (prefix: string[]): void => {
    if (!ok) return
    if (prefix.length > 0) {
      const topic = prefix.join('/')
      if (refMatch(filter, topic)) {
        const d = refDecide(policy, who, 'subscribe', topic)
        if (!d.allow) ok = false
        else if (d.statement !== null && (lowest === null || d.statement < lowest)) lowest = d.statement
      }
    }
    if (prefix.length === depth + 1) return
    for (const l of letters) visit([...prefix, l])
  }
  visit([])
  return ok ? { allow: true, statement: lowest } : { allow: false, statement: null }
}

// ------------------------------------------------------------------ generators

const IDENTITIES: Identity[] = [
  { clientId: 'd1', deviceId: 'd1' },
  { clientId: 'd2', deviceId: 'd2' },
  { clientId: 'd1/m1', deviceId: 'd1', moduleId: 'm1' },
]
const IDENTITY_ENTRIES = ['d1', 'd2', 'd1/m1', 'd2/m1', '{{iot:identity}}', '{{iot:device_id}}', '{{iot:module_id}}', '{{mqtt:client_id}}']
const TWO_LEVEL_VARS = ['{{iot:identity}}', '{{mqtt:client_id}}'] // a module's client id spans two levels
const RESOURCE_LEVELS = ['a', 'b', '', '$s', 'd1', '+', '{{iot:device_id}}', '{{iot:module_id}}', 'p{{iot:device_id}}', ...TWO_LEVEL_VARS]
const QUERY_LEVELS = ['a', 'b', '', '$s', 'd1', 'm1', 'd2', 'pd1', 'z']

const resourceArb = fc
  .tuple(fc.array(fc.constantFrom(...RESOURCE_LEVELS), { minLength: 0, maxLength: 2 }), fc.boolean())
  .map(([levels, hash]) => (levels.length === 0 || hash ? [...levels, '#'] : levels).join('/'))
  // Keep instantiated filters ≤ 3 levels so the brute-force universe stays small.
  .filter((r) => r !== '' && r.split('/').reduce((n, l) => n + (TWO_LEVEL_VARS.includes(l) ? 2 : 1), 0) <= 3)

const ruleArb: fc.Arbitrary<AuthorizationRule> = fc
  .subarray(['mqtt:connect', 'mqtt:publish', 'mqtt:subscribe'], { minLength: 1 })
  .chain((operations) =>
    operations.some((o) => o !== 'mqtt:connect')
      ? fc.array(resourceArb, { minLength: 1, maxLength: 2 }).map((resources) => ({ operations, resources }))
      : fc.constant({ operations }),
  )

const statementArb: fc.Arbitrary<AuthorizationStatement> = fc
  .record({
    identities: fc.subarray(IDENTITY_ENTRIES, { minLength: 1, maxLength: 2 }),
    allow: fc.array(ruleArb, { maxLength: 2 }),
    deny: fc.array(ruleArb, { maxLength: 2 }),
  })
  .filter((s) => s.allow.length + s.deny.length > 0)

const topicArb = fc.array(fc.constantFrom(...QUERY_LEVELS), { minLength: 1, maxLength: 4 }).map((l) => l.join('/') || 'a')
const filterArb = fc
  .tuple(fc.array(fc.constantFrom(...QUERY_LEVELS, '+', '+'), { minLength: 0, maxLength: 2 }), fc.boolean())
  .map(([levels, hash]) => (levels.length === 0 || hash ? [...levels, '#'] : levels).join('/') || 'a')

const queryArb = fc.oneof(
  { weight: 1, arbitrary: fc.record({ op: fc.constant<Operation>('connect'), topic: fc.constant(undefined) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant<Operation>('publish'), topic: topicArb }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant<Operation>('subscribe'), topic: filterArb }) },
)

// ------------------------------------------------------------------ the property

test('decide() agrees with the reference model on 12,000 random policies and requests', () => {
  const stats = { allow: 0, deny: 0, wildcardSubscribeAllowed: 0 }
  fc.assert(
    fc.property(fc.array(statementArb, { maxLength: 4 }), fc.constantFrom(...IDENTITIES), queryArb, (policy, who, { op, topic }) => {
      const compiled = compilePolicy(policy)
      const want = op === 'subscribe' ? refSubscribe(policy, who, topic as string) : refDecide(policy, who, op, topic)
      const got = compiled.decide(who, op, topic)
      assert.equal(got.decision, want.allow ? 'allow' : 'deny', got.reason)
      if (op !== 'subscribe' || want.allow) assert.equal(got.statement?.index ?? null, want.statement, got.reason)
      // the cached per-identity view says the same, twice
      const view = compiled.forIdentity(who)
      for (let i = 0; i < 2; i++) {
        const b = op === 'connect' ? view.canConnect() : op === 'publish' ? view.canPublish(topic as string) : view.canSubscribe(topic as string)
        assert.equal(b, want.allow)
      }
      stats[want.allow ? 'allow' : 'deny']++
      if (want.allow && op === 'subscribe' && /[+#]/.test(topic as string)) stats.wildcardSubscribeAllowed++
    }),
    { numRuns: 12_000 },
  )
  if (process.env.POLICY_STATS) console.log(JSON.stringify(stats))
  // Not vacuous: both outcomes, and allowed wildcard subscriptions, really occurred.
  assert.ok(stats.allow > 1000 && stats.deny > 1000, JSON.stringify(stats))
  assert.ok(stats.wildcardSubscribeAllowed > 100, JSON.stringify(stats))
})
