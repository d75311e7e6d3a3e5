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

// Commands do no file or process work themselves and reach the registry only through the
// Registry/HubService (never the Store under it): those live in src/<concern>/.
const BANNED_IO = [/^(node:)?fs(\/promises)?$/, /^(node:)?child_process$/, /\/registry\/(sqlite|redis)-store\.js$/]
/** `ctx.store`, `registry.store`, `const { store } = …` (a flag named --store, `this.flags.store`, is not the store). */
const STORE_ACCESS = [/(?<!flags)\.store\b/, /\{[^}=]*\bstore\b[^}:=]*\}\s*=/]

test('no file under src/commands imports node:fs, node:child_process or a store backend, or touches the store directly', () => {
  const offenders: string[] = []
  for (const f of sources(join(REPO_ROOT, 'src', 'commands'))) {
    const text = readFileSync(f, 'utf8')
    for (const spec of importsOf(text)) if (BANNED_IO.some((b) => b.test(spec))) offenders.push(`${relative(REPO_ROOT, f)} imports "${spec}"`)
    for (const [i, line] of text.split('\n').entries()) {
      if (STORE_ACCESS.some((re) => re.test(line))) offenders.push(`${relative(REPO_ROOT, f)}:${i + 1} uses the store: ${line.trim()}`)
    }
  }
  assert.deepEqual(offenders, [], 'commands stay thin: move this into src/<concern>/ (Registry, HubService, …) and call it')
})

test('the store-access patterns catch what they are meant to (guards the test above)', () => {
  const hits = (line: string) => STORE_ACCESS.some((re) => re.test(line))
  for (const bad of ['await ctx.store.getDevice(id)', 'registry.store.listDevices()', 'const { registry, store } = await this.hub()', 'const { store } = ctx']) assert.ok(hits(bad), bad)
  for (const fine of ['this.flags.store.replace(/x/, "")', '{ store: this.flags.store }', 'const restore = 1']) assert.ok(!hits(fine), fine)
})
