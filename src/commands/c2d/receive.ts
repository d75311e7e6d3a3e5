import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, pick } from '../../cli/flags.js'
import { DeviceClient } from '../../device/device-client.js'
import { TimeoutError } from '../../errors.js'
import { HubService } from '../../service/hub-service.js'

export default class C2dReceive extends BaseCommand<typeof C2dReceive> {
  static summary = 'Receive cloud-to-device messages as the device (prints one JSON line per message).'
  static description =
    'Without --lt/--complete/--abandon/--reject the device subscribes over MQTT and prints each message that arrives. ' +
    'With any of them it reads its C2D queue as az does (IoT Hub\'s HTTPS receive, through the running broker): the oldest queued message, locked for --lt seconds, printed as {data, etag, properties: {app, system}}, then settled as asked; ' +
    'a locked message stays queued until `c2d complete/abandon/reject --etag`. Nothing queued: nothing printed, exit 0.'
  static aliases = ['device:c2d-message:receive', 'iot:device:c2d-message:receive']
  static examples = [
    '<%= config.bin %> c2d receive --device sensor --count 1',
    '<%= config.bin %> device c2d-message receive -d sensor --timeout 60',
    '<%= config.bin %> device c2d-message receive -d sensor --complete          # az: lock, print, complete',
    '<%= config.bin %> device c2d-message receive -d sensor --lt 30              # locked 30 s; then c2d complete/abandon/reject -e <etag>',
  ]
  static flags = {
    device: deviceFlag,
    count: Flags.integer({ summary: 'Exit after this many messages.', default: 1, min: 1 }),
    timeout: Flags.integer({ summary: 'Give up after this many seconds (exit 4).', default: 60, min: 1 }),
    'lock-timeout': Flags.integer({ aliases: ['lt'], summary: 'az: read the C2D queue and lock the message this many seconds (default 60).', min: 1, max: 300 }),
    complete: Flags.boolean({ summary: 'az: read the C2D queue and complete the message.', exclusive: ['abandon', 'reject'] }),
    abandon: Flags.boolean({ summary: 'az: read the C2D queue and abandon the message (it is delivered again).', exclusive: ['complete', 'reject'] }),
    reject: Flags.boolean({ summary: 'az: read the C2D queue and reject the message (feedback Rejected).', exclusive: ['complete', 'abandon'] }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const settle = f.complete ? 'complete' : f.abandon ? 'abandon' : f.reject ? 'reject' : undefined
    if (settle || f['lock-timeout'] !== undefined) {
      const deviceId = pick('device', undefined, f.device, '-d/--device')
      const svc = new HubService(await this.hub())
      const m = await svc.receiveC2dLocked(deviceId, f['lock-timeout'] ?? 60)
      if (!m) {
        this.logToStderr(`no cloud-to-device message is waiting in the queue of "${deviceId}"`)
        return
      }
      this.print(m)
      if (settle) await svc.settleC2d(deviceId, m.etag, settle)
      return
    }
    const client = await DeviceClient.connect(await this.hub(), { deviceId: pick('device', undefined, this.flags.device, '-d/--device') }, { clean: false })
    let got = 0
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new TimeoutError(`received ${got} of ${this.flags.count} messages within ${this.flags.timeout} s`)), this.flags.timeout * 1000)
        void client
          .onMessage((m) => {
            this.log(JSON.stringify({ data: m.payload.toString('utf8'), properties: m.properties, systemProperties: m.systemProperties }))
            if (++got >= this.flags.count) {
              clearTimeout(timer)
              resolve()
            }
          })
          .catch(reject)
      })
    } finally {
      await client.close()
    }
  }
}
