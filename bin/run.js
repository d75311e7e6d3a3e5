#!/usr/bin/env node
// oclif's start-up check of its own `engines` loads all of semver (52 files, ~7 % of a command's
// start-up); npm already enforces edgemq's engines (node >= 20) at install.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'

// Stack traces (printed with EDGEMQ_DEBUG or --log-level debug) name src/*.ts lines; the maps are
// read only then, as parsing them costs start-up time.
const argv = process.argv
if (process.env.EDGEMQ_DEBUG || argv.includes('--log-level=debug') || argv.some((a, i) => a === '--log-level' && argv[i + 1] === 'debug')) {
  process.setSourceMapsEnabled(true)
}

// The bundled CLI (scripts/bundle.mjs, made by `npm run build`): oclif and the commands in a few
// files rather than ~250 modules.
const { execute } = await import('../dist/bundle/main.js')
await execute({ dir: import.meta.url })
