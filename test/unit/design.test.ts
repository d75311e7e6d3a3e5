/**
 * Design rules that are cheap to check by reading the sources (STYLE.md: "Commands are thin:
 * parse flags, call a library class, return a typed result"). A command that needs the database,
 * the broker core, crypto or an MQTT client goes through src/<concern>/ instead.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { test } from 'node:test'

import { importsOf, sourceFiles as sources } from '../helpers/imports.js'
import { REPO_ROOT } from '../helpers/paths.js'

const BANNED = [/^better-sqlite3$/, /^aedes(\/|-|$)/, /^(node:)?crypto$/, /^mqtt(\/|$)/]

test('no file under src/commands imports better-sqlite3, aedes, node:crypto or mqtt', () => {
  const files = sources(join(REPO_ROOT, 'src', 'commands'))
  assert.ok(files.length >= 10, 'found the command sources')
  const offenders: string[] = []
  for (const f of files) {
    for (const spec of importsOf(readFileSync(f, 'utf8'))) {
      if (BANNED.some((b) => b.test(spec))) offenders.push(`${relative(REPO_ROOT, f)} imports "${spec}"`)
    }
  }
  assert.deepEqual(offenders, [], 'commands stay thin: move this into src/<concern>/ and call it')
})

test('the import scanner sees every import form (guards the test above)', () => {
  const src = `import Database from 'better-sqlite3'\nimport { x } from "mqtt"\nexport * from 'aedes'\nconst c = await import('node:crypto')\nimport 'crypto'\n`
  assert.deepEqual(importsOf(src), ['better-sqlite3', 'mqtt', 'aedes', 'node:crypto', 'crypto'])
})
