import { BaseCommand } from '../../../cli/base.js'
import { consumerGroupHubNameFlag, consumerGroupNameFlag, eventHubEndpointFlag } from '../../../cli/consumer-group-flags.js'
import { deleteConsumerGroup } from '../../../eventhubs/consumer-groups.js'

export default class ConsumerGroupDelete extends BaseCommand<typeof ConsumerGroupDelete> {
  static summary = 'Delete a consumer group of the built-in Event Hubs-compatible endpoint ($Default cannot be).'
  static examples = ['<%= config.bin %> hub consumer-group delete --name analytics', '<%= config.bin %> hub consumer-group delete --hub-name edgemq -n analytics -o json']
  static flags = { name: consumerGroupNameFlag, 'hub-name': consumerGroupHubNameFlag, 'event-hub-endpoint-name': eventHubEndpointFlag }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    await deleteConsumerGroup(await this.hub(), this.flags.name)
    if (this.flags.output === 'json') this.print({ deleted: this.flags.name })
    else this.log(`deleted consumer group ${this.flags.name}`)
  }
}
