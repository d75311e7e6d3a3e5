import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlagWith, hubTargetFlags, repairFlag, yesFlag } from '../../cli/flags.js'
import { TimeoutError } from '../../errors.js'
import { watchFeedback } from '../../service/feedback-watch.js'
import { HubService } from '../../service/hub-service.js'

export default class HubMonitorFeedback extends BaseCommand<typeof HubMonitorFeedback> {
  static summary = 'Read cloud-to-device delivery feedback (like az iot hub monitor-feedback).'
  static description =
    'A C2D message sent with an ack (`c2d send --ack full`, or the service SDK\'s message.ack) gets a feedback record when the device completes it (Success), or it expires (Expired). Records are read once: what this prints is gone from the hub\'s feedback queue, as getFeedbackReceiver() completing it. One JSON record per line; stops after --wait-on-msg\'s record, or --timeout seconds (0 = never). Needs a running broker.'
  static examples = [
    '<%= config.bin %> hub monitor-feedback',
    '<%= config.bin %> hub monitor-feedback -d sensor --wait-on-msg 5d8e… --timeout 60',
    '<%= config.bin %> c2d send -d sensor --ack full --props "$.mid=m1" && <%= config.bin %> hub monitor-feedback -d sensor -w m1',
  ]
  static flags = {
    device: deviceFlagWith('Only this device\'s feedback (others stay queued).'),
    'wait-on-msg': Flags.string({ char: 'w', summary: 'Exit once the feedback for this message id arrives.' }),
    timeout: Flags.integer({ aliases: ['to'], summary: 'Stop after this many seconds (0 = never).', default: 300, min: 0 }),
    ...hubTargetFlags,
    yes: yesFlag,
    repair: repairFlag,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const svc = new HubService(await this.hub())
    const ac = new AbortController()
    process.once('SIGINT', () => ac.abort())
    if (process.stderr.isTTY) this.logToStderr('monitoring C2D delivery feedback… (Ctrl-C to stop)')
    const { found, timedOut } = await watchFeedback(svc, {
      deviceId: f.device,
      waitOn: f['wait-on-msg'],
      timeoutSecs: f.timeout,
      signal: ac.signal,
      onRecord: (record) => this.log(JSON.stringify(record, null, this.flags.output === 'json' && process.stdout.isTTY ? 2 : 0)),
    })
    if (timedOut && f['wait-on-msg'] !== undefined && !found) throw new TimeoutError(`no feedback for message "${f['wait-on-msg']}" within ${f.timeout} s`)
  }
}
