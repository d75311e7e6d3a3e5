import { Flags } from '@oclif/core'

import type { C2dSettlement } from '../iothub/index.js'
import { HubService } from '../service/hub-service.js'
import { BaseCommand } from './base.js'
import { deviceFlag, hubTargetFlags, pick } from './flags.js'

/** `c2d complete|abandon|reject -d <device> -e <etag>` (az iot device c2d-message …): one command body, the settlement set by each. */
export abstract class C2dSettleCommand extends BaseCommand<typeof C2dSettleCommand> {
  static description = 'The etag is the lock token `c2d receive --lt/--complete/…` printed; a lapsed or unknown lock exits 1 (IoT Hub: 412).'
  static flags = {
    device: deviceFlag,
    etag: Flags.string({ char: 'e', summary: 'The lock token (etag) of the received message.', required: true }),
    ...hubTargetFlags,
  }

  protected abstract readonly settlement: C2dSettlement

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    this.print(await svc.settleC2d(pick('device', undefined, this.flags.device, '-d/--device'), this.flags.etag, this.settlement))
  }
}
