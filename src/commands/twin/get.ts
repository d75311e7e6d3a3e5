import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, moduleFlag, pick } from '../../cli/flags.js'
import { DeviceClient } from '../../device/device-client.js'

export default class TwinGet extends BaseCommand<typeof TwinGet> {
  static summary = 'Get the twin as the device sees it, over MQTT ($iothub/twin/GET).'
  static examples = ['<%= config.bin %> twin get --device sensor', '<%= config.bin %> twin get -d edge-gateway -m filter']
  static flags = { device: deviceFlag, module: moduleFlag }

  async run(): Promise<void> {
    const client = await DeviceClient.connect(await this.hub(), { deviceId: pick('device', undefined, this.flags.device, '-d/--device'), moduleId: this.flags.module })
    try {
      this.print(await client.getTwin())
    } finally {
      await client.close()
    }
  }
}
