import { BaseCommand } from '../../../cli/base.js'
import { consumerGroupHubNameFlag, eventHubEndpointFlag } from '../../../cli/consumer-group-flags.js'
import { listConsumerGroups } from '../../../eventhubs/consumer-groups.js'

export default class ConsumerGroupList extends BaseCommand<typeof ConsumerGroupList> {
  static summary = 'List the consumer groups of the built-in Event Hubs-compatible endpoint ($Default first).'
  static examples = ['<%= config.bin %> hub consumer-group list', '<%= config.bin %> hub consumer-group list --hub-name edgemq -o table']
  static flags = { 'hub-name': consumerGroupHubNameFlag, 'event-hub-endpoint-name': eventHubEndpointFlag }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { hub } = await this.hub()
    this.print(listConsumerGroups(hub))
  }
}
