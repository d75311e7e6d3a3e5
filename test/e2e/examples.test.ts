/**
 * Issue 17: the files the README walkthroughs use ship in examples/ and the README uses them by
 * that path; each one does what the README says it does (through the real CLI).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { cliJson, REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'

const EXAMPLES = join(REPO_ROOT, 'examples')
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')

describe('examples/', () => {
  test('every file in examples/ is used by the README by its path, and every examples/ path the README uses exists', () => {
    const files = readdirSync(EXAMPLES).sort()
    assert.deepEqual(files, ['deployment.json', 'devices.json', 'filter.js', 'parent-policy.json'])
    for (const f of files) assert.match(README, new RegExp(`examples/${f.replace('.', '\\.')}`), `README uses examples/${f}`)
    for (const m of README.matchAll(/examples\/([\w.-]+\.\w+)/g)) assert.ok(files.includes(m[1]), `README names examples/${m[1]}, which exists`)
    for (const bare of ['edgehub set parent-policy.json', 'deployment apply deployment.json', 'node filter.js', 'fixtures/devices.json']) {
      assert.ok(!README.includes(bare), `README still says "${bare}"`)
    }
  })

  test('.gitignore keeps the walkthrough\'s parent and child homes (they hold keys) out of git', () => {
    const r = spawnSync('git', ['check-ignore', 'parent/registry.db', 'child/pki/ca.key.pem'], { cwd: REPO_ROOT, encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['parent/registry.db', 'child/pki/ca.key.pem'])
  })

  test('parent-policy.json: child-edge may publish /remote/messages/# and subscribe alerts/#, nothing else', async () => {
    const home = tempHome()
    await cliJson(home, ['hub', 'init', '--name', 'parenthub'])
    await cliJson(home, ['device', 'create', 'child-edge', '--edge'])
    const set = await runCli(['edgehub', 'set', 'examples/parent-policy.json'], { home })
    assert.equal(set.code, 0, set.stderr)
    const check = (op: string, topic?: string) => cliJson<{ decision: string }>(home, ['policy', 'check', '--identity', 'child-edge', '--op', op, ...(topic ? ['--topic', topic] : [])])
    assert.equal((await check('connect')).decision, 'allow')
    assert.equal((await check('publish', '/remote/messages/telemetry')).decision, 'allow')
    assert.equal((await check('subscribe', 'alerts/#')).decision, 'allow')
    assert.equal((await check('publish', 'alerts/x')).decision, 'deny')
    assert.equal((await check('subscribe', '#')).decision, 'deny')
  })

  test('deployment.json: creates the filter module, its routes and its twin\'s threshold', async () => {
    const home = tempHome()
    const r = await cliJson<{ created: string[]; edgeHub: { routes: string[] } }>(home, ['deployment', 'apply', 'examples/deployment.json'])
    assert.deepEqual(r.created, ['filter'])
    assert.deepEqual(r.edgeHub.routes.sort(), ['filterToUpstream', 'sensorToFilter'])
    const twin = await cliJson<{ properties: { desired: { threshold?: number } } }>(home, ['twin', 'show', '-d', 'edge-gateway', '-m', 'filter'])
    assert.equal(twin.properties.desired.threshold, 30)
  })

  test('devices.json: `hub import` adds sensor-1 and sensor-2 and leaves the policy and the edge device alone', async () => {
    const home = tempHome()
    await cliJson(home, ['edgehub', 'set', '--default-policy'])
    const edgeBefore = await cliJson<{ authentication: unknown }>(home, ['device', 'show', 'edge-gateway'])
    const policyBefore = await cliJson<unknown>(home, ['edgehub', 'show'])
    const r = await cliJson<{ devices: { created: number; updated: number } }>(home, ['hub', 'import', 'examples/devices.json'])
    assert.deepEqual(r.devices, { created: 2, updated: 0, skipped: 0 })
    const ids = (await cliJson<{ deviceId: string }[]>(home, ['device', 'list'])).map((d) => d.deviceId).sort()
    assert.deepEqual(ids, ['edge-gateway', 'sensor-1', 'sensor-2'])
    assert.deepEqual((await cliJson<{ authentication: unknown }>(home, ['device', 'show', 'edge-gateway'])).authentication, edgeBefore.authentication)
    assert.deepEqual(await cliJson<unknown>(home, ['edgehub', 'show']), policyBefore)
  })

  test('filter.js is valid JavaScript for node', () => {
    const r = spawnSync(process.execPath, ['--check', join(EXAMPLES, 'filter.js')], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
  })
})
