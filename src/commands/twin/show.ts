import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, moduleFlag, pick } from '../../cli/flags.js'
import { HubService } from '../../service/hub-service.js'

export default class TwinShow extends BaseCommand<typeof TwinShow> {
  static summary = 'Show a device or module twin (service side).'
  static description = 'Works with or without a running broker (connectionState needs one).'
  static aliases = ['hub:device-twin:show', 'hub:module-twin:show']
  static examples = [
    '<%= config.bin %> twin show --device sub_client',
    '<%= config.bin %> hub module-twin show -d edge-gateway -m \'$edgeHub\'',
    '<%= config.bin %> twin show -d sensor -o json | jq .properties.reported',
  ]
  static flags = { device: deviceFlag, module: moduleFlag, ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    const deviceId = pick('device', undefined, this.flags.device, '-d/--device')
    this.print(await svc.showTwin(this.flags.module ? { deviceId, moduleId: this.flags.module } : { deviceId }))
  }
}
