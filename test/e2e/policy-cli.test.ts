/**
 * Issue 5: `policy validate` and `policy check` as a user runs them (the real binary), and the
 * broker's start banner when no policy is set.
 *
 * - validate: exit 0 on the seed's three fixtures (verbatim, trailing commas included); exit 2 on
 *   a bad file, listing EVERY error with its JSON path and fix.
 * - check: allow/deny and the deciding statement (`-o json`: {decision, statement: {index,
 *   description} | null, reason}), against --file or the hub's `$edgeHub` twin; a hub with no
 *   policy denies with a reason that says how to set one.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it } from 'node:test'

import { BIN, jsonOf, REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'

const FIXTURES = resolve(REPO_ROOT, '../shared/fixtures')
const ROGUE = join(FIXTURES, 'seed-policy-rogue-client.json')
const PUBSUB = join(FIXTURES, 'seed-policy-pubsub.json')
const DEFAULT = join(FIXTURES, 'seed-policy-default.json')

interface CheckJson {
  decision: 'allow' | 'deny'
  statement: { index: number; description?: string } | null
  reason: string
}

describe('policy validate', () => {
  it('exit 0 on the three seed fixtures, verbatim', async () => {
    const results = await Promise.all([ROGUE, PUBSUB, DEFAULT].map((f) => runCli(['policy', 'validate', f])))
    assert.deepEqual(
      results.map((r) => [r.code, r.stderr]),
      [
        [0, ''],
        [0, ''],
        [0, ''],
      ],
    )
    assert.deepEqual(
      results.map((r) => jsonOf<{ valid: boolean; statements: number }>(r)),
      [
        { valid: true, statements: 3 },
        { valid: true, statements: 3 },
        { valid: true, statements: 1 },
      ],
    )
  })

  it('exit 2 on a bad file, listing every error with its path: operation, variable, filters, identities, empty statement, schemaVersion', async () => {
    const home = tempHome()
    const bad = join(home, 'bad.json')
    // Comments and trailing commas are fine (the seed's own sample has them); the content is not.
    writeFileSync(
      bad,
      `// every mistake PROTOCOL.md §3 names, once
{
  "schemaVersion": "1.1",
  "mqttBroker": { "authorizations": [
    { "identities": ["sensor_1"], "allow": [{ "operations": ["mqtt:pub"], "resources": ["events/alerts"] }] },
    { "identities": ["{{iot:devce_id}}"], "allow": [{ "operations": ["mqtt:connect"] }] },
    { "identities": ["sub_client"], "allow": [{ "operations": ["mqtt:subscribe"], "resources": ["a/#/b", "a+", "{{iot:bogus}}/x"] }] },
    { "allow": [{ "operations": ["mqtt:connect"] }] },
    { "identities": ["x"] },
  ]}
}
`,
    )
    const r = await runCli(['policy', 'validate', bad])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.equal(r.stdout, '')
    const expected: [string, RegExp][] = [
      ['schemaVersion', /schemaVersion "1\.1" is not supported; use "1\.2"/],
      ['mqttBroker.authorizations[0].allow[0].operations[0]', /unknown operation "mqtt:pub"; supported: mqtt:connect, mqtt:publish, mqtt:subscribe/],
      ['mqttBroker.authorizations[1].identities[0]', /unknown variable "\{\{iot:devce_id\}\}"; supported: \{\{iot:identity\}\}/],
      ['mqttBroker.authorizations[2].allow[0].resources[0]', /invalid topic filter "a\/#\/b": # must be the last level/],
      ['mqttBroker.authorizations[2].allow[0].resources[1]', /invalid topic filter "a\+": \+ must occupy a whole level/],
      ['mqttBroker.authorizations[2].allow[0].resources[2]', /unknown variable "\{\{iot:bogus\}\}"/],
      ['mqttBroker.authorizations[3].identities', /identities is missing; list the client ids/],
      ['mqttBroker.authorizations[4]', /empty statement: it has no "allow" or "deny" rules/],
    ]
    const lines = r.stderr.split('\n').map((l) => l.trim())
    for (const [path, message] of expected) {
      const line = lines.find((l) => l.startsWith(`${path}: `))
      assert.ok(line, `no error line for ${path} in:\n${r.stderr}`)
      assert.match(line, message)
    }
    assert.match(r.stderr, new RegExp(`${expected.length} errors`))
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace')
  })

  it('exit 2 for unparseable JSON, naming line and column; exit ≠ 0 for a missing file', async () => {
    const home = tempHome()
    const broken = join(home, 'broken.json')
    writeFileSync(broken, '{\n  "schemaVersion": "1.2",\n  "mqttBroker": { "authorizations": [ }\n}\n')
    const r = await runCli(['policy', 'validate', broken])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /line 3/)
    const missing = await runCli(['policy', 'validate', join(home, 'nope.json')])
    assert.notEqual(missing.code, 0)
    assert.match(missing.stderr, /nope\.json" not found/)
  })
})

describe('policy check', () => {
  const check = async (args: string[], home?: string): Promise<CheckJson> => {
    const r = await runCli(['policy', 'check', ...args, '-o', 'json'], home ? { home } : {})
    assert.equal(r.code, 0, r.stderr)
    return jsonOf<CheckJson>(r)
  }

  it('--file: allow and deny with the deciding statement (index, description) or null for default deny', async () => {
    const [rogue, sensorConnect, alerts, other, subWild, subOk, pubOther] = await Promise.all([
      check(['--identity', 'rogue_client', '--op', 'connect', '--file', ROGUE]),
      check(['--identity', 'sensor_1', '--op', 'mqtt:connect', '--file', ROGUE]),
      check(['--identity', 'sensor_1', '--op', 'publish', '--topic', 'events/alerts', '--file', ROGUE]),
      check(['--identity', 'sensor_1', '--op', 'publish', '--topic', 'events/other', '--file', ROGUE]),
      check(['--identity', 'sub_client', '--op', 'subscribe', '--topic', 'test/#', '--file', PUBSUB]),
      check(['--identity', 'sub_client', '--op', 'subscribe', '--topic', 'test_topic', '--file', PUBSUB]),
      check(['--identity', 'pub_client', '--op', 'publish', '--topic', 'other_topic', '--file', PUBSUB]),
    ])
    assert.deepEqual(rogue, {
      decision: 'deny',
      statement: { index: 0, description: 'rogue_client is not allowed to connect' },
      reason: 'statement 0 (rogue_client is not allowed to connect) denies mqtt:connect',
    })
    assert.equal(sensorConnect.decision, 'allow')
    assert.deepEqual(sensorConnect.statement, { index: 1, description: 'Allow all Azure IoT identities to connect' })
    assert.deepEqual(alerts, {
      decision: 'allow',
      statement: { index: 2, description: 'Allow sensor_1 to publish alerts' },
      reason: 'statement 2 (Allow sensor_1 to publish alerts) allows mqtt:publish on events/alerts',
    })
    assert.deepEqual(other, { decision: 'deny', statement: null, reason: 'no statement allows mqtt:publish on events/other for sensor_1: default deny' })
    assert.equal(subWild.decision, 'deny')
    assert.equal(subWild.statement, null)
    assert.match(subWild.reason, /test\/#/)
    assert.equal(subOk.decision, 'allow')
    assert.equal(subOk.statement?.index, 1)
    assert.equal(pubOther.decision, 'deny')
  })

  it('human output is one line: DECISION: reason', async () => {
    const r = await runCli(['policy', 'check', '--identity', 'rogue_client', '--op', 'connect', '--file', ROGUE, '-o', 'table'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'DENY: statement 0 (rogue_client is not allowed to connect) denies mqtt:connect')
  })

  it('a bad --op or a missing --topic is a usage error (exit 1, one line + hint)', async () => {
    const [op, topic] = await Promise.all([
      runCli(['policy', 'check', '--identity', 'a', '--op', 'mqtt:pub', '--file', ROGUE]),
      runCli(['policy', 'check', '--identity', 'a', '--op', 'publish', '--file', ROGUE]),
    ])
    assert.equal(op.code, 1, op.stderr)
    assert.match(op.stderr, /unknown operation "mqtt:pub"/)
    assert.equal(topic.code, 1, topic.stderr)
    assert.match(topic.stderr, /--topic is needed for publish/)
  })

  it('against the hub: no policy → deny with a reason that says how to set one; after `edgehub set` the hub\'s policy decides', async () => {
    const home = tempHome()
    const none = await check(['--identity', 'sensor_1', '--op', 'connect'], home)
    assert.equal(none.decision, 'deny')
    assert.equal(none.statement, null)
    assert.match(none.reason, /no authorization policy is set.*edgemq edgehub set/)

    const set = await runCli(['edgehub', 'set', ROGUE], { home })
    assert.equal(set.code, 0, set.stderr)
    const [rogue, alerts] = await Promise.all([
      check(['--identity', 'rogue_client', '--op', 'connect'], home),
      check(['--identity', 'sensor_1', '--op', 'publish', '--topic', 'events/alerts'], home),
    ])
    assert.deepEqual(rogue.statement, { index: 0, description: 'rogue_client is not allowed to connect' })
    assert.equal(rogue.decision, 'deny')
    assert.equal(alerts.decision, 'allow')
    assert.equal(alerts.statement?.index, 2)
  })
})

describe('broker start with no policy', () => {
  it('the human banner says nobody may connect and how to set the seed\'s default policy', async () => {
    const home = tempHome()
    // `-o table`: the human banner (the JSON ready line is for -o json when stdout is not a TTY).
    const child = spawn(process.execPath, [BIN, 'broker', 'start', '--home', home, '--in-memory', '--port', '0', '--no-tls', '-o', 'table'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined, NO_COLOR: '1' },
    })
    const exited = once(child, 'exit')
    let stderr = ''
    const banner: string[] = []
    const LOGGED = /no authorization policy is set.*edgemq edgehub set --default-policy/
    try {
      // Both streams are written independently (the log asynchronously): wait for each on its own.
      await Promise.all([
        new Promise<void>((resolveBanner, reject) => {
          createInterface({ input: child.stdout }).on('line', (l) => {
            banner.push(l)
            if (l.startsWith('next:')) resolveBanner()
          })
          child.once('exit', (code) => reject(new Error(`broker exited (${code}) before its banner:\n${banner.join('\n')}\n${stderr}`)))
        }),
        new Promise<void>((resolveLog, reject) => {
          const timer = setTimeout(() => reject(new Error(`no log line matched ${LOGGED}:\n${stderr}`)), 20_000)
          createInterface({ input: child.stderr }).on('line', (l) => {
            stderr += l + '\n'
            if (LOGGED.test(l)) {
              clearTimeout(timer)
              resolveLog()
            }
          })
        }),
      ])
    } finally {
      child.kill('SIGTERM')
      await exited
    }
    const text = banner.join('\n')
    assert.match(text, /policy: none set, so NO client may connect/)
    assert.match(text, /edgemq edgehub set --default-policy/)
    assert.match(text, /edgemq edgehub set <policy\.json>/)
    // The log (stderr) says it too (awaited above), for --daemon and -o json runs that print no banner.
    assert.match(stderr, /"level":40/)
  })
})
