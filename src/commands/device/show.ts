import { BaseCommand } from '../../cli/base.js'
import { deviceArg, deviceFlag, hubTargetFlags, pick } from '../../cli/flags.js'
import { deviceView } from '../../registry/views.js'

export default class DeviceShow extends BaseCommand<typeof DeviceShow> {
  static summary = 'Show a device identity.'
  static aliases = ['hub:device-identity:show']
  static examples = ['<%= config.bin %> device show sub_client', '<%= config.bin %> hub device-identity show -d sub_client -n edgemq']
  static args = { deviceId: deviceArg }
  static flags = { device: deviceFlag, ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { registry } = await this.hub()
    const device = await registry.getDevice(pick('device', this.args.deviceId, this.flags.device, '-d/--device'))
    const parent = await registry.parentOf(device)
    this.print(deviceView(device, parent), { columns: ['deviceId', 'status', 'authentication.type', 'capabilities.iotEdge', 'parentScopes'] })
  }
}
