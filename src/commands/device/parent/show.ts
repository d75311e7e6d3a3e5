import { BaseCommand } from '../../../cli/base.js'
import { deviceArg, deviceFlag, hubTargetFlags, pick } from '../../../cli/flags.js'
import { showParent } from '../../../service/identity.js'

export default class DeviceParentShow extends BaseCommand<typeof DeviceParentShow> {
  static summary = 'Show the parent IoT Edge device of a device (az iot hub device-identity parent show).'
  static aliases = ['hub:device-identity:parent:show']
  static examples = ['<%= config.bin %> hub device-identity parent show -d sub_client', '<%= config.bin %> device parent show sub_client -o table']
  static args = { deviceId: deviceArg }
  static flags = { device: deviceFlag, ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    this.print(await showParent(await this.hub(), pick('device', this.args.deviceId, this.flags.device, '-d/--device-id')), {
      columns: ['deviceId', 'status', 'authentication.type', 'capabilities.iotEdge', 'deviceScope'],
    })
  }
}
