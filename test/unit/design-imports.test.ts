/**
 * The import graph of src/ has no cycles (issue 20): every import counts, type-only ones
 * included, because a cycle of types is still two modules that cannot be understood apart.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'

import { cyclesOf, importGraph, importsOf } from '../helpers/imports.js'
import { REPO_ROOT } from '../helpers/paths.js'

const show = (cycle: string[]) => [...cycle, cycle[0]].join(' → ')

test('src/ has no import cycles (type-only imports included)', () => {
  const graph = importGraph(REPO_ROOT, join(REPO_ROOT, 'src'))
  assert.ok(graph.size >= 50, 'read the sources')
  const cycles = cyclesOf(graph).map(show)
  assert.deepEqual(cycles, [], `import cycles in src/:\n${cycles.join('\n')}`)
})

test('the scanner sees type-only imports, re-exports and import() calls (guards the tests above)', () => {
  const src = `import type { A } from './a.js'\nexport type { B } from './b.js'\nexport * from './c.js'\nconst d = await import('./d.js')\nimport './e.js'\n`
  assert.deepEqual(importsOf(src), ['./a.js', './b.js', './c.js', './d.js', './e.js'])
})

test('the cycle finder lists every elementary cycle once, from its smallest file (guards the tests above)', () => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['a.ts', 'c.ts']],
    ['c.ts', ['d.ts']],
    ['d.ts', ['b.ts']],
    ['e.ts', ['e.ts']],
  ])
  assert.deepEqual(cyclesOf(g).map(show).sort(), ['a.ts → b.ts → a.ts', 'b.ts → c.ts → d.ts → b.ts', 'e.ts → e.ts'])
})
