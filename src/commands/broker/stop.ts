import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { stopBroker } from '../../service/broker-stop.js'

export default class BrokerStop extends BaseCommand<typeof BrokerStop> {
  static summary = 'Stop the broker of this home gracefully (SIGTERM, then wait until it has exited).'
  static examples = ['<%= config.bin %> broker stop', '<%= config.bin %> broker stop --timeout 30']
  static flags = { timeout: Flags.integer({ summary: 'Seconds to wait before SIGKILL.', default: 15, min: 1 }) }

  async run(): Promise<void> {
    const r = await stopBroker(this.home, this.flags.timeout * 1000)
    this.print(r)
  }
}
