/**
 * The import graph of the sources, read syntactically with TypeScript's own pre-processor:
 * static imports (type-only ones included), re-exports, side-effect imports and import() calls.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

import ts from 'typescript'

/** Every .ts/.mts/.js/.mjs file under `dir`. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? sourceFiles(p) : /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [p] : []
  })
}

/** Module specifiers a source imports, in order of appearance. */
export function importsOf(src: string): string[] {
  return ts.preProcessFile(src, true, true).importedFiles.map((f) => f.fileName)
}

/** The source file a relative specifier names (`./x.js` → `x.ts`, `./dir` → `dir/index.ts`), or undefined. */
function resolveRelative(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined
  const base = resolve(dirname(from), spec)
  const stem = base.replace(/\.(js|mjs|ts|mts)$/, '')
  return [`${stem}.ts`, `${stem}.mts`, base, join(base, 'index.ts')].find((p) => existsSync(p) && statSync(p).isFile())
}

/** file (relative to `root`) → the files it imports (relative to `root`). */
export function importGraph(root: string, dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sourceFiles(dir)) {
    const deps = importsOf(readFileSync(file, 'utf8'))
      .map((spec) => resolveRelative(file, spec))
      .filter((p): p is string => p !== undefined)
      .map((p) => relative(root, p))
    graph.set(relative(root, file), [...new Set(deps)].sort())
  }
  return graph
}

/**
 * Every elementary cycle of the graph (Johnson's algorithm, stopping after `limit`), each as its
 * files in import order starting from the smallest name, e.g. ['a.ts', 'b.ts'] for a → b → a.
 */
export function cyclesOf(graph: Map<string, string[]>, limit = 10_000): string[][] {
  const nodes = [...graph.keys()].sort()
  const out: string[][] = []
  for (let i = 0; i < nodes.length && out.length < limit; i++) {
    const start = nodes[i]
    // Only cycles whose smallest node is `start`: search the nodes from i on.
    const allowed = new Set(nodes.slice(i))
    const blocked = new Set<string>()
    const blockMap = new Map<string, Set<string>>()
    const stack: string[] = []
    const unblock = (n: string): void => {
      blocked.delete(n)
      for (const m of blockMap.get(n) ?? []) if (blocked.has(m)) unblock(m)
      blockMap.delete(n)
    }
    const circuit = (v: string): boolean => {
      let found = false
      stack.push(v)
      blocked.add(v)
      for (const w of graph.get(v) ?? []) {
        if (!allowed.has(w) || out.length >= limit) continue
        if (w === start) {
          out.push([...stack])
          found = true
        } else if (!blocked.has(w) && circuit(w)) found = true
      }
      if (found) unblock(v)
      else for (const w of graph.get(v) ?? []) if (allowed.has(w)) (blockMap.get(w) ?? blockMap.set(w, new Set()).get(w)!).add(v)
      stack.pop()
      return found
    }
    circuit(start)
  }
  return out
}
