import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { deploymentIdFlag, hubTargetFlags } from '../../../cli/flags.js'
import { updateEdgeDeployment } from '../../../deployment/index.js'
import { UsageError } from '../../../errors.js'
import { HubService } from '../../../service/hub-service.js'

export default class EdgeDeploymentUpdate extends BaseCommand<typeof EdgeDeploymentUpdate> {
  static summary = 'Change an IoT Edge deployment\'s labels, metrics, priority or target condition (az iot edge deployment update).'
  static description =
    'az\'s generic update: --set labels.<key>=<value>, labels=<JSON>, metrics.queries.<name>=<query>, priority=<n>, targetCondition=<condition>; --remove labels.<key> or metrics.queries.<name>. ' +
    'The content is fixed once created, as on IoT Hub. Every edge device then gets its winning deployment again.'
  static examples = [
    '<%= config.bin %> edge deployment update -d canary --set priority=30 --set labels.ring=broad',
    '<%= config.bin %> edge deployment update -d canary --set "targetCondition=tags.site = \'lab\'" --etag "…"',
    '<%= config.bin %> edge deployment update -d canary --remove labels.ring',
  ]
  static flags = {
    'deployment-id': deploymentIdFlag,
    set: Flags.string({ multiple: true, summary: 'path=value: labels.<key>, labels, metrics.queries.<name>, priority, targetCondition.' }),
    remove: Flags.string({ multiple: true, summary: 'labels.<key> or metrics.queries.<name> to remove.' }),
    etag: Flags.string({ char: 'e', summary: 'Update only if the deployment still has this etag (az: -e/--etag).' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    if (!f.set && !f.remove) throw new UsageError('nothing to update', 'pass --set path=value and/or --remove path')
    const ctx = await this.hub()
    this.print(await updateEdgeDeployment(ctx, new HubService(ctx), f['deployment-id'], { set: f.set, remove: f.remove, etag: f.etag }))
  }
}
