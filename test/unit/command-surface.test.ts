/**
 * The command surface (every command, alias, argument and flag) is a reviewed snapshot: a flag
 * cannot vanish or change unnoticed. After an intended change: `npm run surface:update`, and
 * review the diff of test/fixtures-local/command-surface.json and README.md.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { README, readManifestSurface, readmeReference, readSnapshot, referenceOf } from '../../scripts/command-surface.js'

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
