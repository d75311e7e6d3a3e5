import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { deviceArg, deviceFlagWith, hubTargetFlags, pick } from '../../../cli/flags.js'
import { addChildren, listChildren } from '../../../service/identity.js'

export default class DeviceChildrenAdd extends BaseCommand<typeof DeviceChildrenAdd> {
  static summary = 'Make devices children of an IoT Edge device (az iot hub device-identity children add).'
  static description = 'A device that already has another parent is refused unless --force. Prints the edge device\'s children.'
  static aliases = ['hub:device-identity:children:add']
  static examples = ['<%= config.bin %> hub device-identity children add -d edge-gateway --cl sensor1 sensor2', '<%= config.bin %> device children add edge-gateway --cl sensor1 --force']
  static args = { deviceId: deviceArg }
  static flags = {
    device: deviceFlagWith('The IoT Edge (parent) device.'),
    'child-list': Flags.string({ aliases: ['cl'], multiple: true, required: true, summary: 'Child device ids (space separated, as az).' }),
    force: Flags.boolean({ char: 'f', summary: 'Take children away from another parent.' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const ctx = await this.hub()
    const edgeId = pick('device', this.args.deviceId, this.flags.device, '-d/--device-id')
    await addChildren(ctx, edgeId, this.flags['child-list'], { force: this.flags.force })
    this.print(await listChildren(ctx, edgeId))
  }
}
