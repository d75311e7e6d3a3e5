import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, pick, repairFlag, yesFlag } from '../../cli/flags.js'
import { TimeoutError } from '../../errors.js'
import type { FeedbackAck, FeedbackRecord } from '../../iothub/index.js'
import { readDocumentBytes } from '../../service/edgehub.js'
import { watchFeedback } from '../../service/feedback-watch.js'
import { c2dSystemProperties, HubService } from '../../service/hub-service.js'

export default class C2dSend extends BaseCommand<typeof C2dSend> {
  static summary = 'Send a cloud-to-device message (QoS 1); a device that is not subscribed gets it from its C2D queue on its next subscribe.'
  static description =
    'As IoT Hub: each device has a C2D queue of at most 50 messages, each kept for 1 hour (or until its expiry time: --expiry in ms since the epoch, as az, or $.exp in --props); the output says "queued": true when the message waits there. ' +
    'With --wait (az -w, needs --ack) it waits for the message\'s delivery feedback and adds it as "feedback".'
  static aliases = ['device:c2d-message:send', 'iot:device:c2d-message:send']
  static examples = [
    '<%= config.bin %> c2d send --device sensor --data "reboot at noon"',
    '<%= config.bin %> c2d send -d sensor --data \'{"cmd":"on"}\' --props "priority=high;$.ct=application/json"',
    '<%= config.bin %> device c2d-message send -d sensor --da reboot --mid m1 --ct text/plain --ack full --wait',
    '<%= config.bin %> c2d send -d sensor --data reboot --ack full --props "$.mid=m1"   # then: hub monitor-feedback -w m1',
  ]
  static flags = {
    device: deviceFlag,
    data: Flags.string({ aliases: ['da'], summary: 'Message body.', default: 'Ping from edgemq', exclusive: ['data-file-path'] }),
    'data-file-path': Flags.string({ aliases: ['dfp'], summary: 'Send this file\'s bytes as the body (az --dfp).' }),
    props: Flags.string({ char: 'p', aliases: ['properties'], summary: 'Properties: a=1;b=2 (az) or a=1&b=2; $.mid, $.cid, $.ct, $.ce, $.exp are system properties.' }),
    'message-id': Flags.string({ aliases: ['mid'], summary: 'Message id (default: a new UUID).' }),
    'correlation-id': Flags.string({ aliases: ['cid'], summary: 'Correlation id.' }),
    'user-id': Flags.string({ aliases: ['uid'], summary: 'User id.' }),
    'content-type': Flags.string({ aliases: ['ct'], summary: 'Content type of the body.' }),
    'content-encoding': Flags.string({ aliases: ['ce'], summary: 'Content encoding of the body (e.g. utf-8).' }),
    'expiry-time-utc': Flags.string({ aliases: ['expiry'], summary: 'Expiry time in milliseconds since the epoch (az), or ISO 8601; a past time is refused.' }),
    ack: Flags.string({ summary: 'Delivery feedback to ask for (read it with `hub monitor-feedback`).', options: ['none', 'positive', 'negative', 'full'] }),
    wait: Flags.boolean({ char: 'w', summary: 'Wait for the delivery feedback (needs --ack positive, negative or full).' }),
    timeout: Flags.integer({ summary: 'With --wait: give up after this many seconds (exit 4).', default: 300, min: 1 }),
    yes: yesFlag,
    repair: repairFlag,
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const sys = c2dSystemProperties({
      messageId: f['message-id'],
      correlationId: f['correlation-id'],
      userId: f['user-id'],
      contentType: f['content-type'],
      contentEncoding: f['content-encoding'],
      expiry: f['expiry-time-utc'],
      wait: f.wait,
      ack: f.ack,
    })
    const svc = new HubService(await this.hub())
    const deviceId = pick('device', undefined, f.device, '-d/--device')
    const body = f['data-file-path'] ? readDocumentBytes(f['data-file-path']) : f.data
    const r = await svc.sendC2d(deviceId, body, f.props, { ack: f.ack as FeedbackAck | undefined, sys })
    if (r.queued) this.logToStderr(`queued: device "${deviceId}" is not subscribed to its C2D topic; it gets the message on its next subscribe (within 1 hour, IoT Hub's default time to live)`)
    if (!f.wait) return this.print(r)
    let feedback: FeedbackRecord | undefined
    const { found } = await watchFeedback(svc, { deviceId, waitOn: r.messageId, timeoutSecs: f.timeout, onRecord: (rec) => (feedback = rec.originalMessageId === r.messageId ? rec : feedback) })
    if (!found) throw new TimeoutError(`no delivery feedback for message "${r.messageId}" within ${f.timeout} s`, 'the device has not completed, rejected or let the message expire yet')
    this.print({ ...r, feedback })
  }
}
