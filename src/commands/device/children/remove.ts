import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { deviceArg, deviceFlagWith, hubTargetFlags, pick } from '../../../cli/flags.js'
import { listChildren, removeChildren } from '../../../service/identity.js'

export default class DeviceChildrenRemove extends BaseCommand<typeof DeviceChildrenRemove> {
  static summary = 'Remove children from an IoT Edge device (az iot hub device-identity children remove).'
  static description = 'Prints the children left.'
  static aliases = ['hub:device-identity:children:remove']
  static examples = ['<%= config.bin %> hub device-identity children remove -d edge-gateway --cl sensor1', '<%= config.bin %> device children remove edge-gateway --remove-all']
  static args = { deviceId: deviceArg }
  static flags = {
    device: deviceFlagWith('The IoT Edge (parent) device.'),
    'child-list': Flags.string({ aliases: ['cl'], multiple: true, summary: 'Child device ids (space separated, as az).' }),
    'remove-all': Flags.boolean({ char: 'a', summary: 'Remove every child.' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const ctx = await this.hub()
    const edgeId = pick('device', this.args.deviceId, this.flags.device, '-d/--device-id')
    await removeChildren(ctx, edgeId, { childIds: this.flags['child-list'], all: this.flags['remove-all'] })
    this.print(await listChildren(ctx, edgeId))
  }
}
