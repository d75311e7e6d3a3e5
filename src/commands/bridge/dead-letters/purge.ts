import { Flags } from '@oclif/core'

import { openDeadLetters } from '../../../bridge/dead-letters.js'
import { BaseCommand } from '../../../cli/base.js'
import { UsageError } from '../../../errors.js'

export default class BridgeDeadLettersPurge extends BaseCommand<typeof BridgeDeadLettersPurge> {
  static summary = 'Delete dead letters (messages $upstream refused) for good.'
  static examples = ['<%= config.bin %> bridge dead-letters purge --all', '<%= config.bin %> bridge dead-letters purge --id 7', '<%= config.bin %> bridge dead-letters purge --all -o json | jq .purged']
  static flags = {
    id: Flags.integer({ summary: 'A dead letter\'s id (from `list`); repeatable.', multiple: true, min: 1, exclusive: ['all'] }),
    all: Flags.boolean({ summary: 'Every dead letter.', exclusive: ['id'] }),
  }

  async run(): Promise<void> {
    if (!this.flags.all && !this.flags.id) throw new UsageError('name the dead letters to purge', 'pass --id <id> (repeatable; see `edgemq bridge dead-letters list`) or --all')
    const { ops, via, close } = openDeadLetters(await this.hub())
    try {
      const r = await ops.purge(this.flags.all ? undefined : this.flags.id)
      if (this.flags.output === 'json') this.print({ via, ...r })
      else this.log(`purged ${r.purged} dead letter(s)`)
    } finally {
      close()
    }
  }
}
