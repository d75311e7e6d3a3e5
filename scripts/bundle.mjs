#!/usr/bin/env node
// Bundles the CLI (npm run build, after tsc): every command, the command_not_found hook and oclif
// itself into dist/bundle/, ES modules split into shared chunks, so starting `edgemq` reads a
// handful of files instead of ~250 (65 of them @oclif/core's CommonJS) and resolves none of their
// imports. Measured on this 2-core machine against the unbundled CLI, side by side, 20 runs each
// twice: `edgemq device list` 270–299 → 193–218 ms of CPU per process, `edgemq --version`
// 205–225 → 153–158 ms (bare `node -e 0`: 78–80 ms).
// package.json's oclif section points at the bundle; dist/*.js (tsc's output) stays the library
// (package.json "main") and what the bundle is made from is the TypeScript in src/.
// Left out of the bundle, loaded from node_modules when used: native addons, the TypeScript
// toolchains oclif only loads for linked plugins, the pino family (its transports start worker
// threads by file name) and ioredis (it reads its own package.json through __dirname, which an
// ES module has not; cluster mode also loads it through mqemitter-redis, so one copy serves both).
// The build goes to dist/bundle.next and replaces dist/bundle with two renames, so an `edgemq`
// started during a rebuild never finds half a bundle.
import { build } from 'esbuild'
import { existsSync, renameSync, rmSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

import { tsFiles } from './ts-files.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const final = join(root, 'dist', 'bundle')
const out = `${final}.next`

// Entry name → source: commands/device/list → src/commands/device/list.ts (the manifest's paths).
const entryPoints = { main: join(root, 'src', 'cli', 'main.ts'), 'cli/hooks/command-not-found': join(root, 'src', 'cli', 'hooks', 'command-not-found.ts') }
for (const file of tsFiles(join(root, 'src', 'commands'))) entryPoints[relative(join(root, 'src'), file).replace(/\.ts$/, '')] = file

rmSync(out, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints,
  outdir: out,
  // Chunks beside main.js, two levels below the package root like tsc's dist/x/y.js, so code that
  // finds files relative to its module (createRequire, bin/run.js) resolves the same from both.
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ES module builds where a package has both: esbuild cannot follow a UMD build's requires.
  mainFields: ['module', 'main'],
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  // Maps for the stack traces `EDGEMQ_DEBUG=1` prints (bin/run.js turns them on only then).
  sourcemap: 'linked',
  sourcesContent: false,
  external: ['better-sqlite3', 'classic-level', 'typescript', 'ts-node', 'tsx', 'pino', 'pino-pretty', 'ioredis', 'bufferutil', 'utf-8-validate'],
  // Bundled CommonJS calls require() for Node's builtins; ES modules have none of their own.
  banner: { js: "import { createRequire as __edgemqCreateRequire } from 'node:module'; const require = __edgemqCreateRequire(import.meta.url);" },
  logLevel: 'warning',
})

const old = `${final}.old`
rmSync(old, { recursive: true, force: true })
if (existsSync(final)) renameSync(final, old)
renameSync(out, final)
rmSync(old, { recursive: true, force: true })
