import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { deviceArg, deviceFlag, hubTargetFlags, pick } from '../../../cli/flags.js'
import { setParent, showParent } from '../../../service/identity.js'

export default class DeviceParentSet extends BaseCommand<typeof DeviceParentSet> {
  static summary = 'Set the parent IoT Edge device of a device (az iot hub device-identity parent set).'
  static description = 'A device that already has another parent is refused unless --force. Prints the new parent.'
  static aliases = ['hub:device-identity:parent:set']
  static examples = ['<%= config.bin %> hub device-identity parent set -d sub_client --pd edge-gateway', '<%= config.bin %> device parent set sub_client --pd gw2 --force']
  static args = { deviceId: deviceArg }
  static flags = {
    device: deviceFlag,
    pd: Flags.string({ aliases: ['parent-device-id'], required: true, summary: 'The IoT Edge device to be the parent.' }),
    force: Flags.boolean({ char: 'f', summary: 'Overwrite an existing parent.' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const ctx = await this.hub()
    const deviceId = pick('device', this.args.deviceId, this.flags.device, '-d/--device-id')
    await setParent(ctx, deviceId, this.flags.pd, { force: this.flags.force })
    this.print(await showParent(ctx, deviceId))
  }
}
