import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, moduleFlag, pick } from '../../cli/flags.js'
import { DeviceClient } from '../../device/device-client.js'
import { parseJsonArg } from '../../service/hub-service.js'

export default class TwinReport extends BaseCommand<typeof TwinReport> {
  static summary = 'Report properties as the device, over MQTT ($iothub/twin/PATCH/properties/reported).'
  static examples = ['<%= config.bin %> twin report --device sensor --reported \'{"firmware": "1.2"}\'', '<%= config.bin %> twin report -d sensor --reported @state.json']
  static flags = { device: deviceFlag, module: moduleFlag, reported: Flags.string({ summary: 'Reported patch: JSON or @file.', required: true }) }

  async run(): Promise<void> {
    const patch = parseJsonArg(this.flags.reported, '--reported')
    const client = await DeviceClient.connect(await this.hub(), { deviceId: pick('device', undefined, this.flags.device, '-d/--device'), moduleId: this.flags.module })
    try {
      this.print({ reportedVersion: await client.reportProperties(patch) })
    } finally {
      await client.close()
    }
  }
}
