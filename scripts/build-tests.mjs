#!/usr/bin/env node
// Compiles the TypeScript that test files load (src/, test/, bench/, scripts/) to plain ES modules
// in .build/, one .js per .ts in the same layout, with inline source maps, so `npm test` runs
// test files on bare Node instead of through tsx.
// Why: tsx resolves and transforms every import through a loader thread; measured on this 2-core
// machine that cost 0.2–0.6 s of CPU per test file process (e.g. broker-auth 1.43 s → 0.76 s), and
// the suite is CPU-bound. Types are still checked: `npm test` runs `tsc -p tsconfig.test.json`.
// esbuild only strips types (per file, no bundling), so the output is the source minus its types.
//
// Each run builds into its own .build/run-<pid>/ and removes it at the end, so two runs side by
// side (npm test and npm run test:unit, say) never delete each other's files; a folder left by a
// run that was killed is removed by the next run once its process is gone.
//
//   node scripts/build-tests.mjs        → builds .build/run-<pid>/ (about half a second) and prints it
import { readdirSync, rmSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { tsFiles } from './ts-files.mjs'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const BUILD_DIR = join(ROOT, '.build')
/** This run's output folder. */
export const OUT_DIR = join(BUILD_DIR, `run-${process.pid}`)
const SOURCE_DIRS = ['src', 'test', 'bench', 'scripts']

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Builds this run's folder from scratch (a deleted source never leaves a stale .js behind). */
export async function buildTests() {
  const { build } = await import('esbuild')
  let left = []
  try {
    left = readdirSync(BUILD_DIR)
  } catch {
    // no .build yet
  }
  for (const name of left) {
    const m = /^run-(\d+)$/.exec(name)
    if (!m || Number(m[1]) === process.pid || !alive(Number(m[1]))) rmSync(join(BUILD_DIR, name), { recursive: true, force: true })
  }
  const out = OUT_DIR
  await build({
    absWorkingDir: ROOT,
    entryPoints: SOURCE_DIRS.flatMap((d) => tsFiles(join(ROOT, d))),
    outdir: out,
    outbase: ROOT,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'error',
  })
}

/** Removes this run's folder. */
export const removeBuild = () => rmSync(OUT_DIR, { recursive: true, force: true })

/** The compiled path of a source file: test/unit/x.test.ts → .build/run-<pid>/test/unit/x.test.js. */
export const compiledPath = (file) => join(OUT_DIR, relative(ROOT, resolve(file)).replace(/\.ts$/, '.js'))

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await buildTests()
  console.log(OUT_DIR)
}
