/**
 * oclif's `command_not_found` hook: a mistyped command prints the closest command in space
 * notation ("did you mean device list?") on stderr and exits 2 (usage of an unknown command).
 */
import type { Hook } from '@oclif/core'

import { unknownCommandLines } from '../suggest.js'

const hook: Hook<'command_not_found'> = async function (opts) {
  const known = [...opts.config.commandIDs, ...opts.config.topics.map((t) => t.name)]
  for (const line of unknownCommandLines(opts.id.split(':'), known, opts.config.bin)) process.stderr.write(line + '\n')
  this.exit(2)
}

export default hook
