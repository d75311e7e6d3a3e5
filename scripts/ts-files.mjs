// The TypeScript sources under a folder (no .d.ts), for the build scripts and the test runner.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Every .ts file under `dir`, depth first, declaration files left out. */
export function tsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return tsFiles(p)
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [p] : []
  })
}
