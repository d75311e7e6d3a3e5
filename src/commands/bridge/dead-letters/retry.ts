import { Flags } from '@oclif/core'

import { openDeadLetters } from '../../../bridge/dead-letters.js'
import { BaseCommand } from '../../../cli/base.js'
import { UsageError } from '../../../errors.js'

export default class BridgeDeadLettersRetry extends BaseCommand<typeof BridgeDeadLettersRetry> {
  static summary = 'Put dead letters back at the tail of the bridge queue, to be sent to $upstream again.'
  static description = `Each gets a fresh set of attempts and its time to live counts from now; refused again, it returns to the dead-letter store. With a running broker they go up at once (fix the parent's policy first); without one they wait in <home>/forward.db for the next \`broker start\`.`
  static examples = [
    '<%= config.bin %> bridge dead-letters retry --all',
    '<%= config.bin %> bridge dead-letters retry --id 3 --id 4',
    '<%= config.bin %> bridge dead-letters retry --all -o json | jq .requeued',
  ]
  static flags = {
    id: Flags.integer({ summary: 'A dead letter\'s id (from `list`); repeatable.', multiple: true, min: 1, exclusive: ['all'] }),
    all: Flags.boolean({ summary: 'Every dead letter.', exclusive: ['id'] }),
  }

  async run(): Promise<void> {
    if (!this.flags.all && !this.flags.id) throw new UsageError('name the dead letters to retry', 'pass --id <id> (repeatable; see `edgemq bridge dead-letters list`) or --all')
    const { ops, via, close } = openDeadLetters(await this.hub())
    try {
      const r = await ops.retry(this.flags.all ? undefined : this.flags.id)
      if (this.flags.output === 'json') this.print({ via, ...r })
      else this.log(`re-queued ${r.requeued} dead letter(s)${via === 'store' ? ' in the forward store: they go up at the next broker start' : ''}`)
    } finally {
      close()
    }
  }
}
