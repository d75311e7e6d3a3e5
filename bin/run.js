#!/usr/bin/env node
// oclif's start-up check of its own `engines` loads all of semver (52 files, ~7 % of a command's
// start-up); npm already enforces edgemq's engines (node >= 20) at install.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'

const { execute } = await import('@oclif/core')
await execute({ dir: import.meta.url })
