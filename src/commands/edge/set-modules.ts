import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubTargetFlags } from '../../cli/flags.js'
import { applyDeployment, parseDeploymentManifest } from '../../deployment/index.js'
import { readDocument } from '../../service/edgehub.js'
import { MODULE_COLUMNS, moduleView } from '../../registry/views.js'
import { HubService } from '../../service/hub-service.js'

export default class EdgeSetModules extends BaseCommand<typeof EdgeSetModules> {
  static summary = 'Apply an IoT Edge deployment manifest to the edge device (az iot edge set-modules).'
  static description =
    'Reads modulesContent: $edgeAgent (a module identity for every module listed; modules a deployment created and no longer lists are deleted and their clients disconnected), $edgeHub (routes, schemaVersion, storeAndForwardConfiguration, mqttBroker — replacing the current document; the current authorization policy is kept when the manifest has none) and the desired properties of the other modules. The whole manifest is validated first: an invalid one is refused (exit 2) with every error and its JSON path, and nothing is applied. A running broker applies it within a second. Prints the device\'s module identities, as az does (`deployment apply` prints what changed instead).'
  static examples = [
    '<%= config.bin %> edge set-modules --content deployment.json',
    '<%= config.bin %> edge set-modules -d edge-gateway --content config/deployment.amd64.json -n edgemq',
    '<%= config.bin %> deployment apply deployment.json',
  ]
  static flags = {
    device: Flags.string({ char: 'd', aliases: ['device-id'], summary: 'The edge device (default: the hub\'s edge device).' }),
    content: Flags.string({ char: 'k', summary: 'The deployment manifest (JSON file, @file, or - for stdin).', required: true }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    // Validated whole before the hub is touched: a bad manifest changes nothing.
    const manifest = parseDeploymentManifest(readDocument(this.flags.content))
    const ctx = await this.hub()
    const deviceId = this.flags.device ?? ctx.hub.edgeDeviceId
    const r = await applyDeployment(ctx, new HubService(ctx), manifest, { deviceId })
    for (const w of r.warnings) this.logToStderr(`warning: ${w.path}: ${w.message}`)
    // az prints the device's module identities after applying (`deployment apply` prints what changed).
    this.print((await ctx.registry.listModules(deviceId)).map((m) => moduleView(m)), { columns: MODULE_COLUMNS })
  }
}
