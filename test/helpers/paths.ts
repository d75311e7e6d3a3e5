/** Paths of the repository, shared by test/ and bench/ (no node:test import: bench can use it). */
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (this file is test/helpers/paths.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The compiled CLI (`npm run build` makes dist/). */
export const BIN = join(REPO_ROOT, 'bin', 'run.js')
/** The seed's shared fixtures, used in place (never copied). */
export const SEED_FIXTURES = resolve(REPO_ROOT, '../shared/fixtures')
