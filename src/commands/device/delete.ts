import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceArg, deviceFlag, hubTargetFlags, pick } from '../../cli/flags.js'

export default class DeviceDelete extends BaseCommand<typeof DeviceDelete> {
  static summary = 'Delete a device identity (and its modules and twin).'
  static description = 'A connected client of the device is disconnected by a running broker within a second.'
  static aliases = ['hub:device-identity:delete']
  static examples = [
    '<%= config.bin %> device delete sub_client',
    '<%= config.bin %> hub device-identity delete -d sub_client -n edgemq',
    '<%= config.bin %> hub device-identity delete -d sub_client --etag "$(edgemq device show sub_client -o json | jq -r .etag)"',
  ]
  static args = { deviceId: deviceArg }
  static flags = {
    device: deviceFlag,
    ...hubTargetFlags,
    etag: Flags.string({ char: 'e', summary: 'Only delete while the device still has this etag (az --etag; * = any).' }),
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { registry } = await this.hub()
    const id = pick('device', this.args.deviceId, this.flags.device, '-d/--device')
    await registry.deleteDevice(id, { etag: this.flags.etag })
    if (this.flags.output === 'json') this.print({ deleted: id })
    else this.log(`deleted device ${id}`)
  }
}
