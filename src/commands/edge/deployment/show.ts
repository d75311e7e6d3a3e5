import { BaseCommand } from '../../../cli/base.js'
import { deploymentIdFlag, hubTargetFlags } from '../../../cli/flags.js'
import { getEdgeDeployment } from '../../../deployment/index.js'

export default class EdgeDeploymentShow extends BaseCommand<typeof EdgeDeploymentShow> {
  static summary = 'Show an IoT Edge deployment (az iot edge deployment show).'
  static examples = ['<%= config.bin %> edge deployment show -d base', '<%= config.bin %> edge deployment show -d base -o json | jq .systemMetrics.results']
  static flags = {
    'deployment-id': deploymentIdFlag,
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    this.print(await getEdgeDeployment(await this.hub(), this.flags['deployment-id']))
  }
}
