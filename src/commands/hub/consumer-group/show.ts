import { BaseCommand } from '../../../cli/base.js'
import { consumerGroupHubNameFlag, consumerGroupNameFlag, eventHubEndpointFlag } from '../../../cli/consumer-group-flags.js'
import { showConsumerGroup } from '../../../eventhubs/consumer-groups.js'

export default class ConsumerGroupShow extends BaseCommand<typeof ConsumerGroupShow> {
  static summary = 'Show a consumer group of the built-in Event Hubs-compatible endpoint.'
  static examples = ['<%= config.bin %> hub consumer-group show --name \\$Default', '<%= config.bin %> hub consumer-group show --hub-name edgemq -n analytics']
  static flags = { name: consumerGroupNameFlag, 'hub-name': consumerGroupHubNameFlag, 'event-hub-endpoint-name': eventHubEndpointFlag }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { hub } = await this.hub()
    this.print(showConsumerGroup(hub, this.flags.name))
  }
}
