/**
 * The command surface (every command, alias, argument and flag) is a reviewed snapshot: a flag
 * cannot vanish or change unnoticed. After an intended change: `npm run surface:update`, and
 * review the diff of test/fixtures-local/command-surface.json and README.md.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { AZ_END, AZ_START, azCoverage, azTableOf, readAzCommands } from '../../scripts/az-coverage.js'
import { README, readManifestSurface, readmeReference, readSnapshot, referenceOf, type CommandSurface, type FlagSurface } from '../../scripts/command-surface.js'

const HINT = 'if the change is intended, run `npm run surface:update` and review the diff'

test('the built CLI has exactly the commands, aliases, arguments and flags of the snapshot', () => {
  const built = readManifestSurface()
  const snap = readSnapshot()
  assert.ok(built.length >= 40, 'read the manifest')
  const ids = (s: typeof built) => s.flatMap((c) => [c.id, ...c.aliases.map((a) => `${a} (alias of ${c.id})`)])
  assert.deepEqual(ids(built), ids(snap), `commands or aliases changed; ${HINT}`)
  for (const c of snap) assert.deepEqual(built.find((b) => b.id === c.id), c, `\`edgemq ${c.id}\` changed; ${HINT}`)
})

test("README's command reference is generated from the snapshot and up to date", () => {
  assert.equal(readmeReference(readFileSync(README, 'utf8')), referenceOf(readSnapshot()), `README.md's command reference is stale; ${HINT}`)
})

test("README's az coverage table is computed from az's commands and the snapshot, and up to date", () => {
  const az = readAzCommands()
  assert.match(az.commit, /^[0-9a-f]{40}$/, 'the az data names the extension commit it was read from')
  assert.ok(az.commands.length >= 100, 'read the az command tables')
  const table = azTableOf(azCoverage(readSnapshot(), az), az)
  assert.equal(readmeReference(readFileSync(README, 'utf8'), AZ_START, AZ_END), table, `README.md's az coverage table is stale; ${HINT}`)
})

test('az coverage: a command is found by id or alias, with or without `iot`, and every option string of an argument counts', () => {
  const flag = (name: string, extra: Partial<FlagSurface> = {}): FlagSurface => ({ name, type: 'option', required: false, multiple: false, ...extra })
  const surface: CommandSurface[] = [
    { id: 'device create', aliases: ['hub device-identity create'], args: [], flags: [flag('device', { char: 'd', aliases: ['device-id'] }), flag('edge', { type: 'boolean', aliases: ['ee', 'edge-enabled'] })] },
    { id: 'c2d send', aliases: ['iot device c2d-message send'], args: [], flags: [flag('data')] },
  ]
  const rows = azCoverage(surface, {
    source: 's',
    commit: 'c',
    commands: [
      { command: 'iot hub device-identity create', options: [['--device-id', '-d'], ['--edge-enabled', '--ee']] },
      { command: 'iot device c2d-message send', options: [['--data', '--da'], ['--ack']] },
      { command: 'iot hub job list', options: [['--top']], deprecated: true },
    ],
  })
  assert.deepEqual(
    rows.map((r) => [r.az, r.edgemq, r.status, r.missing]),
    [
      ['iot hub device-identity create', 'hub device-identity create', 'supported', []],
      ['iot device c2d-message send', 'iot device c2d-message send', 'partly', [['--da'], ['--ack']]],
      ['iot hub job list', undefined, 'not supported', [['--top']]],
    ],
  )
  const table = azTableOf(rows, { source: 'https://example.test', commit: 'c'.repeat(40) })
  assert.match(table, /3 az commands: \*\*1 supported, 1 partly supported, 1 not supported\*\*/)
  assert.match(table, /\| `az iot device c2d-message send` \| `edgemq iot device c2d-message send` \| partly: no `--da`, `--ack` \|/)
  assert.match(table, /\| `az iot hub job list` \(deprecated in az\) \| — \| not supported \|/)
})
