import { Flags } from '@oclif/core'

import { openDeadLetters } from '../../../bridge/dead-letters.js'
import { BaseCommand } from '../../../cli/base.js'

export default class BridgeDeadLettersList extends BaseCommand<typeof BridgeDeadLettersList> {
  static summary = 'List the messages $upstream refused (the bridge\'s dead-letter store), oldest first.'
  static description = `A message the parent refuses (it closes the connection right after the message, or answers it with a failure) is sent again alone, with backoff; after 5 attempts (2 when its topic was refused recently) it moves to the dead-letter store in <home>/forward.db and the queue moves on. \`broker status\` counts them (bridges[].deadLettered) and names the last topic in lastError.

Through the running broker when one runs; otherwise straight from <home>/forward.db. Payloads are shown as text, or base64 when they are not UTF-8 (payloadEncoding).`
  static examples = [
    '<%= config.bin %> bridge dead-letters list',
    '<%= config.bin %> bridge dead-letters list -o table',
    '<%= config.bin %> bridge dead-letters list -o json | jq -r \'.items[] | "\\(.id) \\(.topic)"\'',
    '<%= config.bin %> bridge dead-letters list --limit 10 --after-id 40',
  ]
  static flags = {
    limit: Flags.integer({ summary: 'At most this many.', min: 1 }),
    'after-id': Flags.integer({ summary: 'Only dead letters with a larger id (paging).', min: 0 }),
  }

  async run(): Promise<void> {
    const { ops, via, close } = openDeadLetters(await this.hub())
    try {
      const page = await ops.list({ limit: this.flags.limit, afterId: this.flags['after-id'] })
      if (this.flags.output === 'json') this.print({ via, ...page })
      else if (page.items.length === 0) this.logToStderr(`no dead letters (${via === 'broker' ? 'running broker' : 'forward store'})`)
      else this.print(page.items, { columns: ['id', 'topic', 'bytes', 'attempts', 'deadLetteredAt', 'reason'] })
    } finally {
      close()
    }
  }
}
