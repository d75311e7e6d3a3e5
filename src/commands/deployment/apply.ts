import { Args, Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubTargetFlags } from '../../cli/flags.js'
import { applyDeployment, parseDeploymentManifest } from '../../deployment/index.js'
import { readDocument } from '../../service/edgehub.js'
import { HubService } from '../../service/hub-service.js'

export default class DeploymentApply extends BaseCommand<typeof DeploymentApply> {
  static summary = 'Apply an IoT Edge deployment manifest (same as `edge set-modules --content <file>`).'
  static description =
    'Module identities from $edgeAgent, routes and broker settings from $edgeHub, desired properties of the other modules. Validated whole first (exit 2 with every error and its JSON path; nothing applied). A running broker applies it within a second.'
  static examples = ['<%= config.bin %> deployment apply deployment.json', 'cat deployment.json | <%= config.bin %> deployment apply -']
  static args = { file: Args.string({ description: 'The deployment manifest (JSON file, or - for stdin).', required: true }) }
  static flags = {
    device: Flags.string({ char: 'd', aliases: ['device-id'], summary: 'The edge device (default: the hub\'s edge device).' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const manifest = parseDeploymentManifest(readDocument(this.args.file))
    const ctx = await this.hub()
    const r = await applyDeployment(ctx, new HubService(ctx), manifest, { deviceId: this.flags.device })
    for (const w of r.warnings) this.logToStderr(`warning: ${w.path}: ${w.message}`)
    this.print(r)
  }
}
