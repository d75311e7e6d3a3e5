import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { deploymentIdFlag, hubTargetFlags } from '../../../cli/flags.js'
import { showEdgeDeploymentMetric } from '../../../deployment/index.js'

export default class EdgeDeploymentShowMetric extends BaseCommand<typeof EdgeDeploymentShowMetric> {
  static summary = 'Evaluate a metric of an IoT Edge deployment: its query and result (az iot edge deployment show-metric).'
  static description =
    'A user metric (--mt user, the default) runs its query over the twins; a system metric (--mt system: targetedCount, appliedCount) lists the devices the deployment targets or was applied to. Prints {metric, query, result}.'
  static examples = [
    '<%= config.bin %> edge deployment show-metric -d canary -m reporting',
    '<%= config.bin %> edge deployment show-metric -d canary -m appliedCount --mt system',
  ]
  static flags = {
    'deployment-id': deploymentIdFlag,
    'metric-id': Flags.string({ char: 'm', summary: 'The metric (a --cmq/--metrics name, or targetedCount / appliedCount with --mt system).', required: true }),
    'metric-type': Flags.option({ aliases: ['mt'], options: ['user', 'system'] as const, default: 'user', summary: 'user (the deployment\'s metrics) or system.' })(),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    this.print(await showEdgeDeploymentMetric(await this.hub(), f['deployment-id'], f['metric-id'], f['metric-type']))
  }
}
