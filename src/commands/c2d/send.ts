import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, pick } from '../../cli/flags.js'
import type { FeedbackAck } from '../../iothub/index.js'
import { HubService } from '../../service/hub-service.js'

export default class C2dSend extends BaseCommand<typeof C2dSend> {
  static summary = 'Send a cloud-to-device message (QoS 1); a device that is not subscribed gets it from its C2D queue on its next subscribe.'
  static description = 'As IoT Hub: each device has a C2D queue of at most 50 messages, each kept for 1 hour (or until its $.exp expiry time); the output says "queued": true when the message waits there.'
  static aliases = ['device:c2d-message:send', 'iot:device:c2d-message:send']
  static examples = [
    '<%= config.bin %> c2d send --device sensor --data "reboot at noon"',
    '<%= config.bin %> c2d send -d sensor --data \'{"cmd":"on"}\' --props "priority=high;$.ct=application/json"',
    '<%= config.bin %> c2d send -d sensor --data reboot --ack full --props "$.mid=m1"   # then: hub monitor-feedback -w m1',
  ]
  static flags = {
    device: deviceFlag,
    data: Flags.string({ summary: 'Message body.', default: 'Ping from edgemq' }),
    props: Flags.string({ aliases: ['properties'], summary: 'Properties: a=1;b=2 (az) or a=1&b=2.' }),
    ack: Flags.string({ summary: 'Delivery feedback to ask for (read it with `hub monitor-feedback`).', options: ['none', 'positive', 'negative', 'full'] }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    const deviceId = pick('device', undefined, this.flags.device, '-d/--device')
    const r = await svc.sendC2d(deviceId, this.flags.data, this.flags.props, { ack: this.flags.ack as FeedbackAck | undefined })
    if (r.queued) this.logToStderr(`queued: device "${deviceId}" is not subscribed to its C2D topic; it gets the message on its next subscribe (within 1 hour, IoT Hub's default time to live)`)
    this.print(r)
  }
}
