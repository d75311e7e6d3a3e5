import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, pick } from '../../cli/flags.js'
import { HubService } from '../../service/hub-service.js'

export default class C2dPurge extends BaseCommand<typeof C2dPurge> {
  static summary = 'Purge a device\'s cloud-to-device queue (az iot device c2d-message purge).'
  static description = 'Drops the messages waiting for the device in its C2D queue (no feedback is sent for them, as on IoT Hub) and prints {"deviceId", "totalMessagesPurged"}. The queue lives in the running broker: without one nothing is queued.'
  static aliases = ['device:c2d-message:purge', 'iot:device:c2d-message:purge']
  static examples = ['<%= config.bin %> c2d purge --device sensor', '<%= config.bin %> iot device c2d-message purge -d sensor -o json | jq .totalMessagesPurged']
  static flags = { device: deviceFlag, ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    this.print(await svc.purgeC2d(pick('device', undefined, this.flags.device, '-d/--device')))
  }
}
