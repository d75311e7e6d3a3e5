import { BaseCommand } from '../../cli/base.js'
import { deviceFlagWith, hubTargetFlags, pick } from '../../cli/flags.js'
import { exportModules } from '../../deployment/index.js'

export default class EdgeExportModules extends BaseCommand<typeof EdgeExportModules> {
  static summary = 'Print an edge device\'s module twins\' desired properties as a deployment\'s content (az iot edge export-modules).'
  static description = 'Every module of the device ($edgeAgent and $edgeHub included) as {content: {modulesContent: {<module>: {"properties.desired": …}}}}, without $metadata and $version.'
  static examples = ['<%= config.bin %> edge export-modules -d edge-gateway', '<%= config.bin %> edge export-modules -d edge-gateway -n edgemq > current.json']
  static flags = { device: deviceFlagWith('The edge device (az -d/--device-id).'), ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    this.print(await exportModules(await this.hub(), pick('device', undefined, this.flags.device, '-d/--device-id')))
  }
}
