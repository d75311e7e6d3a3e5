import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { hubTargetFlags } from '../../../cli/flags.js'
import { listEdgeDeployments } from '../../../deployment/index.js'

export default class EdgeDeploymentList extends BaseCommand<typeof EdgeDeploymentList> {
  static summary = 'List IoT Edge deployments, oldest first, with their targeted and applied counts (az iot edge deployment list).'
  static examples = ['<%= config.bin %> edge deployment list', '<%= config.bin %> edge deployment list --top 5 -o json | jq \'.[] | {id, priority, systemMetrics}\'']
  static flags = {
    top: Flags.integer({ summary: 'At most this many.', min: 1 }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    this.print(await listEdgeDeployments(await this.hub(), { top: this.flags.top }))
  }
}
