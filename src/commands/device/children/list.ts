import { BaseCommand } from '../../../cli/base.js'
import { deviceArg, deviceFlagWith, hubTargetFlags, pick } from '../../../cli/flags.js'
import { listChildren } from '../../../service/identity.js'

export default class DeviceChildrenList extends BaseCommand<typeof DeviceChildrenList> {
  static summary = 'List the child devices of an IoT Edge device (az iot hub device-identity children list).'
  static aliases = ['hub:device-identity:children:list']
  static examples = ['<%= config.bin %> hub device-identity children list -d edge-gateway', '<%= config.bin %> device children list edge-gateway -o tsv']
  static args = { deviceId: deviceArg }
  static flags = { device: deviceFlagWith('The IoT Edge (parent) device.'), ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    this.print(await listChildren(await this.hub(), pick('device', this.args.deviceId, this.flags.device, '-d/--device-id')))
  }
}
