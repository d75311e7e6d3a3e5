import { BaseCommand } from '../../../cli/base.js'
import { consumerGroupHubNameFlag, consumerGroupNameFlag, eventHubEndpointFlag } from '../../../cli/consumer-group-flags.js'
import { createConsumerGroup } from '../../../eventhubs/consumer-groups.js'

export default class ConsumerGroupCreate extends BaseCommand<typeof ConsumerGroupCreate> {
  static summary = 'Create a consumer group on the built-in Event Hubs-compatible endpoint.'
  static description = 'Readers in different consumer groups each see every event. A running broker serves the new group at once.'
  static examples = ['<%= config.bin %> hub consumer-group create --name analytics', '<%= config.bin %> hub consumer-group create --hub-name edgemq -n analytics -o table']
  static flags = { name: consumerGroupNameFlag, 'hub-name': consumerGroupHubNameFlag, 'event-hub-endpoint-name': eventHubEndpointFlag }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    this.print(await createConsumerGroup(await this.hub(), this.flags.name))
  }
}
