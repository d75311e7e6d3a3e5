import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { deploymentIdFlag, hubTargetFlags } from '../../../cli/flags.js'
import { deleteEdgeDeployment } from '../../../deployment/index.js'
import { HubService } from '../../../service/hub-service.js'

export default class EdgeDeploymentDelete extends BaseCommand<typeof EdgeDeploymentDelete> {
  static summary = 'Delete an IoT Edge deployment; devices it targeted get the next deployment that matches them (az iot edge deployment delete).'
  static description = 'A device no other deployment targets keeps what it was last given, as on IoT Hub.'
  static examples = ['<%= config.bin %> edge deployment delete -d canary', '<%= config.bin %> edge deployment delete -d canary --etag "$(edgemq edge deployment show -d canary -o json | jq -r .etag)"']
  static flags = {
    'deployment-id': deploymentIdFlag,
    etag: Flags.string({ char: 'e', summary: 'Delete only if the deployment still has this etag (az: -e/--etag).' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const ctx = await this.hub()
    await deleteEdgeDeployment(ctx, new HubService(ctx), this.flags['deployment-id'], { etag: this.flags.etag })
    this.print({ deleted: this.flags['deployment-id'] })
  }
}
