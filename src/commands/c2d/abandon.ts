import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubNameFlag, pick } from '../../cli/flags.js'
import { HubService } from '../../service/hub-service.js'

export default class C2dAbandon extends BaseCommand<typeof C2dAbandon> {
  static summary = 'Abandon a locked cloud-to-device message: it is queued again (after its 10th delivery it is dropped instead, feedback DeliveryCountExceeded). (az iot device c2d-message abandon)'
  static description = 'The etag is the lock token `c2d receive --lt/--complete/…` printed; a lapsed or unknown lock exits 1 (IoT Hub: 412).'
  static aliases = ['device:c2d-message:abandon', 'iot:device:c2d-message:abandon']
  static examples = ['<%= config.bin %> c2d abandon -d sensor --etag "$(edgemq c2d receive -d sensor --lt 30 -o json | jq -r .etag)"']
  static flags = {
    device: deviceFlag,
    etag: Flags.string({ char: 'e', summary: 'The lock token (etag) of the received message.', required: true }),
    'hub-name': hubNameFlag,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    this.print(await svc.settleC2d(pick('device', undefined, this.flags.device, '-d/--device'), this.flags.etag, 'abandon'))
  }
}
