import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, pick } from '../../cli/flags.js'
import { DeviceClient } from '../../device/device-client.js'
import { TimeoutError } from '../../errors.js'

export default class C2dReceive extends BaseCommand<typeof C2dReceive> {
  static summary = 'Receive cloud-to-device messages as the device (prints one JSON line per message).'
  static aliases = ['device:c2d-message:receive', 'iot:device:c2d-message:receive']
  static examples = ['<%= config.bin %> c2d receive --device sensor --count 1', '<%= config.bin %> device c2d-message receive -d sensor --timeout 60']
  static flags = {
    device: deviceFlag,
    count: Flags.integer({ summary: 'Exit after this many messages.', default: 1, min: 1 }),
    timeout: Flags.integer({ summary: 'Give up after this many seconds (exit 4).', default: 60, min: 1 }),
  }

  async run(): Promise<void> {
    const client = await DeviceClient.connect(await this.hub(), { deviceId: pick('device', undefined, this.flags.device, '-d/--device') }, { clean: false })
    let got = 0
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new TimeoutError(`received ${got} of ${this.flags.count} messages within ${this.flags.timeout} s`)), this.flags.timeout * 1000)
        void client
          .onMessage((m) => {
            this.log(JSON.stringify({ data: m.payload.toString('utf8'), properties: m.properties, systemProperties: m.systemProperties }))
            if (++got >= this.flags.count) {
              clearTimeout(timer)
              resolve()
            }
          })
          .catch(reject)
      })
    } finally {
      await client.close()
    }
  }
}
