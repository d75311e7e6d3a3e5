/**
 * Unit tests of the bridge's pure parts: topic mapping (src/bridge/topics.ts, PROTOCOL.md §6),
 * the durable store-and-forward queue (src/bridge/queue.ts, §5) and the reconnect backoff.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'

import { backoffMs } from '../../src/bridge/bridge.js'
import { ForwardQueue } from '../../src/bridge/queue.js'
import { compileBridgeSettings, filterCovers, prefixedFilter, remapTopic, remoteFilters } from '../../src/bridge/topics.js'
import type { BridgeSetting } from '../../src/edgehub/config.js'
import { topicMatches } from '../../src/policy/topic.js'
import { tempHome } from '../helpers/cli.js'

const SEED: BridgeSetting[] = [
  { direction: 'in', topic: 'alerts/#', inPrefix: '', outPrefix: '' },
  { direction: 'out', topic: '', inPrefix: '/local/telemetry', outPrefix: '/remote/messages' },
]

describe('bridge topics: prefixedFilter', () => {
  for (const [prefix, topic, want] of [
    ['/local/telemetry', '', '/local/telemetry/#'],
    ['/local/telemetry/', '', '/local/telemetry/#'],
    ['/local/telemetry', 'a/+', '/local/telemetry/a/+'],
    ['', 'alerts/#', 'alerts/#'],
    ['', '', '#'],
    ['local/', 'x', 'local/x'],
  ] as const) {
    it(`"${prefix}" + "${topic}" → "${want}"`, () => assert.equal(prefixedFilter(prefix, topic), want))
  }
})

describe('bridge topics: remapTopic', () => {
  for (const [topic, from, to, want] of [
    ['/local/telemetry/t1', '/local/telemetry', '/remote/messages', '/remote/messages/t1'],
    ['/local/telemetry/a/b/c', '/local/telemetry', '/remote/messages', '/remote/messages/a/b/c'],
    ['/local/telemetry/t1', '/local/telemetry/', '/remote/messages/', '/remote/messages/t1'],
    // `/local/telemetry/#` also matches the prefix itself (MQTT: `#` includes the parent level).
    ['/local/telemetry', '/local/telemetry', '/remote/messages', '/remote/messages'],
    ['alerts/1', '', '', 'alerts/1'],
    ['alerts/1', '', 'up', 'up/alerts/1'],
    ['up/alerts/1', 'up', '', 'alerts/1'],
    // Not below the prefix: a prefix is whole levels, not a string prefix.
    ['/local/telemetryX/t1', '/local/telemetry', '/remote/messages', undefined],
    ['other/t1', '/local/telemetry', '/remote/messages', undefined],
    // Stripping everything with no target prefix would leave an empty topic: refused.
    ['up', 'up', '', undefined],
  ] as const) {
    it(`${topic}: "${from}" → "${to}" = ${String(want)}`, () => assert.equal(remapTopic(topic, from, to), want))
  }
})

describe('bridge topics: compileBridgeSettings', () => {
  it('the seed sample: alerts/# in unchanged, /local/telemetry/# out to /remote/messages', () => {
    const { out, in: inbound } = compileBridgeSettings(SEED)
    assert.deepEqual(out, [{ filter: '/local/telemetry/#', from: '/local/telemetry', to: '/remote/messages' }])
    assert.deepEqual(inbound, [{ filter: 'alerts/#', from: '', to: '' }])
  })

  it('both = one out rule and one in rule, mirror images', () => {
    const { out, in: inbound } = compileBridgeSettings([{ direction: 'both', topic: 'sync/#', inPrefix: 'l', outPrefix: 'r' }])
    assert.deepEqual(out, [{ filter: 'l/sync/#', from: 'l', to: 'r' }])
    assert.deepEqual(inbound, [{ filter: 'r/sync/#', from: 'r', to: 'l' }])
  })

  it('every topic an out rule matches maps below outPrefix, and the in rule of a both setting maps it back', () => {
    const setting: BridgeSetting = { direction: 'both', topic: 'a/+/c', inPrefix: 'site/1', outPrefix: 'fleet/site-1' }
    const { out: [o], in: [i] } = compileBridgeSettings([setting])
    for (const t of ['site/1/a/b/c', 'site/1/a/x/c']) {
      assert.ok(topicMatches(o.filter, t))
      const remote = remapTopic(t, o.from, o.to)
      assert.equal(remote, t.replace('site/1', 'fleet/site-1'))
      assert.ok(topicMatches(i.filter, remote as string), `${remote} is within the in filter ${i.filter}`)
      assert.equal(remapTopic(remote as string, i.from, i.to), t)
    }
    assert.ok(!topicMatches(o.filter, 'site/1/a/b/d'))
    assert.ok(!topicMatches(o.filter, 'site/10/a/b/c'))
  })

  it('no settings, no rules', () => assert.deepEqual(compileBridgeSettings([]), { out: [], in: [] }))
})

describe('bridge queue (ForwardQueue)', () => {
  it('keeps messages in order; peek after a seq; ack removes one', () => {
    const q = new ForwardQueue(':memory:')
    try {
      const seqs = ['a', 'b', 'c'].map((p, i) => q.push('t', Buffer.from(p), i === 2 ? 0 : 1, i === 1))
      assert.ok(seqs[0] < seqs[1] && seqs[1] < seqs[2])
      assert.equal(q.length, 3)
      const all = q.peek(0, 10)
      assert.deepEqual(all.map((m) => [m.payload.toString(), m.qos, m.retain]), [
        ['a', 1, false],
        ['b', 1, true],
        ['c', 0, false],
      ])
      assert.ok(Buffer.isBuffer(all[0].payload))
      assert.deepEqual(q.peek(seqs[0], 1).map((m) => m.seq), [seqs[1]])
      q.ack(seqs[1])
      assert.deepEqual(q.peek(0, 10).map((m) => m.payload.toString()), ['a', 'c'])
      assert.equal(q.length, 2)
    } finally {
      q.close()
    }
  })

  it('expire drops only what is older than the TTL and counts it', () => {
    const q = new ForwardQueue(':memory:')
    try {
      const now = 1_000_000
      q.push('t', Buffer.from('old1'), 1, false, now - 5000)
      q.push('t', Buffer.from('old2'), 1, false, now - 2001)
      q.push('t', Buffer.from('edge'), 1, false, now - 2000)
      q.push('t', Buffer.from('new'), 1, false, now)
      assert.equal(q.expire(2, now), 2)
      assert.deepEqual(q.peek(0, 10).map((m) => m.payload.toString()), ['edge', 'new'])
      assert.equal(q.expire(2, now), 0)
      assert.equal(q.expire(0, now + 1), 2)
      assert.equal(q.expired, 4)
      assert.equal(q.length, 0)
    } finally {
      q.close()
    }
  })

  it('expire leaves what is already in flight (seq ≤ afterSeq) to its PUBACK', () => {
    const q = new ForwardQueue(':memory:')
    try {
      const [a, b] = ['a', 'b'].map((p) => q.push('t', Buffer.from(p), 1, false, 0))
      assert.equal(q.expire(1, 10_000, a), 1)
      assert.deepEqual(q.peek(0, 10).map((m) => m.seq), [a])
      q.ack(a)
      assert.equal(q.length, 0)
      assert.ok(b > a)
    } finally {
      q.close()
    }
  })

  it('survives a reopen (on disk): same order, binary payloads intact, seq keeps growing', () => {
    const file = join(tempHome(), 'forward.db')
    const q1 = new ForwardQueue(file)
    const bin = Buffer.from([0, 255, 10, 13, 0])
    const s1 = q1.push('/remote/messages/1', bin, 1, false)
    const s2 = q1.push('/remote/messages/2', Buffer.from('two'), 1, false)
    q1.ack(s2)
    q1.close()
    const q2 = new ForwardQueue(file)
    try {
      const [m] = q2.peek(0, 10)
      assert.equal(q2.length, 1)
      assert.equal(m.seq, s1)
      assert.equal(m.topic, '/remote/messages/1')
      assert.deepEqual(m.payload, bin)
      // AUTOINCREMENT: a deleted seq is never reused, so "after seq" stays meaningful.
      assert.ok(q2.push('t', Buffer.from('x'), 1, false) > s2)
    } finally {
      q2.close()
    }
  })

  it('is bounded: when full, the oldest messages make room and are counted as dropped', () => {
    const q = new ForwardQueue(':memory:', 3)
    try {
      for (let i = 1; i <= 5; i++) q.push(`t/${i}`, Buffer.from(String(i)), 1, false)
      assert.equal(q.length, 3)
      assert.equal(q.dropped, 2)
      assert.deepEqual(
        q.peek(0, 10).map((m) => m.topic),
        ['t/3', 't/4', 't/5'],
      )
      // Acks and TTL keep the count exact, so the bound stays exact too.
      q.ack(q.peek(0, 1)[0].seq)
      assert.equal(q.length, 2)
      q.push('t/6', Buffer.from('6'), 1, false)
      assert.equal(q.length, 3)
      assert.equal(q.dropped, 2)
    } finally {
      q.close()
    }
  })

  it('close is idempotent', () => {
    const q = new ForwardQueue(':memory:')
    q.close()
    q.close()
  })
})

describe('bridge reconnect backoff (capped exponential, full jitter in the upper half)', () => {
  it('bounds per attempt: [cap/2, cap] with cap = min(30 s, 0.5 s · 2^attempt)', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(30_000, 500 * 2 ** attempt)
      assert.equal(backoffMs(attempt, () => 0), cap / 2)
      assert.equal(backoffMs(attempt, () => 1), cap)
      const mid = backoffMs(attempt, () => 0.5)
      assert.ok(mid > cap / 2 && mid < cap)
    }
  })

  it('starts at 0.25–0.5 s and never exceeds 30 s, even after very many attempts', () => {
    assert.deepEqual([backoffMs(0, () => 0), backoffMs(0, () => 1)], [250, 500])
    // bridgeBackoffMs: another base; one that is not a positive number falls back to 500 ms.
    assert.deepEqual([backoffMs(0, () => 1, 50), backoffMs(3, () => 1, 50)], [50, 400])
    for (const bad of [0, -5, Number.NaN, '7' as unknown as number]) assert.equal(backoffMs(0, () => 1, bad), 500, String(bad))
    for (const attempt of [6, 7, 50, 1100, 10_000]) {
      const v = backoffMs(attempt, () => 1)
      assert.ok(Number.isFinite(v) && v === 30_000, `${attempt}: ${v}`)
    }
  })

  it('jitter: many draws spread over the interval (no two clients reconnect in lockstep)', () => {
    const draws = Array.from({ length: 200 }, () => backoffMs(4))
    assert.ok(draws.every((d) => d >= 4000 && d <= 8000))
    assert.ok(new Set(draws).size > 50)
  })
})

describe('remote filters of `in` rules (issue 21 item 3)', () => {
  it('filterCovers: wildcards, depth, `a/#` covers `a`, `#` does not cover `$` topics', () => {
    const yes: [string, string][] = [['#', 'a/b'], ['a/#', 'a'], ['a/#', 'a/+/c'], ['a/+', 'a/b'], ['a/+', 'a/+'], ['+/+', 'a/b'], ['a/b', 'a/b'], ['#', '#'], ['a/#', 'a/#'], ['$x/#', '$x/y']]
    const no: [string, string][] = [['a/+', 'a/#'], ['a/+', 'a'], ['a/b', 'a/+'], ['a', 'a/b'], ['a/+/c', 'a/b'], ['#', '$iothub/#'], ['+/x', '$a/x'], ['a/b', 'a/c'], ['a/#', 'b']]
    for (const [a, b] of yes) assert.ok(filterCovers(a, b), `${a} covers ${b}`)
    for (const [a, b] of no) assert.ok(!filterCovers(a, b), `${a} does not cover ${b}`)
  })

  it('each filter once, none another covers, in the order the rules first name them', () => {
    const { in: rules } = compileBridgeSettings([
      { direction: 'both', topic: '#', inPrefix: 'l/', outPrefix: 'r/' },
      { direction: 'in', topic: '#', inPrefix: 'l/l/', outPrefix: 'r/' },
      { direction: 'in', topic: 'x/+', inPrefix: 'c', outPrefix: 'r' },
      { direction: 'in', topic: 'alerts/#', inPrefix: '', outPrefix: '' },
      { direction: 'in', topic: 'alerts/+/hot', inPrefix: '', outPrefix: '' },
      { direction: 'in', topic: '$x/#', inPrefix: '', outPrefix: '' },
    ])
    assert.deepEqual(remoteFilters(rules), ['r/#', 'alerts/#', '$x/#'])
    assert.deepEqual(remoteFilters([]), [])
  })
})
