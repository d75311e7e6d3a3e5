import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubNameFlag, pick } from '../../cli/flags.js'
import { HubService } from '../../service/hub-service.js'

export default class C2dSend extends BaseCommand<typeof C2dSend> {
  static summary = 'Send a cloud-to-device message (QoS 1; kept for an offline device with a persistent session).'
  static aliases = ['device:c2d-message:send', 'iot:device:c2d-message:send']
  static examples = [
    '<%= config.bin %> c2d send --device sensor --data "reboot at noon"',
    '<%= config.bin %> c2d send -d sensor --data \'{"cmd":"on"}\' --props "priority=high;$.ct=application/json"',
  ]
  static flags = {
    device: deviceFlag,
    data: Flags.string({ summary: 'Message body.', default: 'Ping from edgemq' }),
    props: Flags.string({ aliases: ['properties'], summary: 'Properties: a=1;b=2 (az) or a=1&b=2.' }),
    'hub-name': hubNameFlag,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    const r = await svc.sendC2d(pick('device', undefined, this.flags.device, '-d/--device'), this.flags.data, this.flags.props)
    this.print(r)
  }
}
