/** Paths of the repository, shared by test/ and bench/ (no node:test import: bench can use it). */
import { dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import { findUp } from '../../src/util/fs.js'

/**
 * The repository root: the nearest directory above this file with a package.json. This file runs
 * from test/helpers/ (tsx, bench) or compiled from .build/test/helpers/ (`npm test`), so a fixed
 * number of `..` would be wrong for one of them.
 */
export const REPO_ROOT = (() => {
  const root = findUp(dirname(fileURLToPath(import.meta.url)), 'package.json')
  if (!root) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
  return root
})()
/** The compiled CLI (`npm run build` makes dist/). */
export const BIN = join(REPO_ROOT, 'bin', 'run.js')
/** The seed's shared fixtures, used in place (never copied). */
export const SEED_FIXTURES = resolve(REPO_ROOT, '../shared/fixtures')

/**
 * A helper script in test/helpers/ to run as a child process, in the form this file runs in: the
 * compiled .js beside it under `npm test`, the .ts through tsx otherwise.
 */
export function helperScript(name: string): { path: string; execArgv: string[] } {
  const ext = extname(fileURLToPath(import.meta.url))
  const path = join(dirname(fileURLToPath(import.meta.url)), `${name}${ext}`)
  return { path, execArgv: ext === '.ts' ? ['--import', 'tsx'] : [] }
}
