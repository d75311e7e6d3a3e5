import { BaseCommand } from '../../cli/base.js'
import { ControlClient } from '../../service/control-client.js'

export default class BrokerStatus extends BaseCommand<typeof BrokerStatus> {
  static summary = 'Show whether the broker of this home runs: ports, connected clients, policy. Exit 3 when not running.'
  static examples = ['<%= config.bin %> broker status', '<%= config.bin %> broker status -o json | jq .clients']

  async run(): Promise<void> {
    const { hub, home } = await this.hub()
    const status = await ControlClient.connect(home, hub).call<Record<string, unknown>>('GET', '/edgemq/status')
    this.print({ running: true, ...status })
  }
}
