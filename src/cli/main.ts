// The CLI's entry in the bundle (scripts/bundle.mjs): bin/run.js takes execute from here, so oclif
// and the bundled commands share one copy of @oclif/core.
export { execute } from '@oclif/core'
