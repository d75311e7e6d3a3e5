import { Flags } from '@oclif/core'

import { BaseCommand } from '../cli/base.js'
import { deviceFlag, moduleFlag, pick } from '../cli/flags.js'
import { UsageError } from '../errors.js'
import { DeviceClient, simulateIntervalMs } from '../device/device-client.js'

export default class Simulate extends BaseCommand<typeof Simulate> {
  static summary = 'Simulate a device: send telemetry on an interval, answer direct methods, mirror desired properties into reported.'
  static aliases = ['device:simulate', 'iot:device:simulate']
  static examples = [
    '<%= config.bin %> simulate --device sensor --count 10 --interval 1000',
    '<%= config.bin %> device simulate -d sensor --msg-count 5 --mi 2 --data \'{"temperature": {{random}}}\'',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    count: Flags.integer({ aliases: ['msg-count', 'mc'], summary: 'Messages to send (0 = until Ctrl-C).', default: 100, min: 0 }),
    'msg-interval': Flags.integer({ aliases: ['mi'], summary: 'Seconds between messages (az: --msg-interval/--mi; default 3).', min: 0 }),
    interval: Flags.integer({ summary: 'Milliseconds between messages (edgemq; --mi is seconds, as az).', min: 1 }),
    data: Flags.string({ summary: 'Body template; {{index}} and {{random}} are replaced.', default: '{"temperature": {{random}}, "index": {{index}}}' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    const deviceId = pick('device', undefined, f.device, '-d/--device')
    if (f['msg-interval'] !== undefined && f.interval !== undefined) throw new UsageError('pass either --mi/--msg-interval (seconds) or --interval (milliseconds), not both')
    const intervalMs = simulateIntervalMs({ msgIntervalSecs: f['msg-interval'], intervalMs: f.interval })
    const client = await DeviceClient.connect(await this.hub(), { deviceId, moduleId: f.module })
    await client.onMethod((req) => {
      this.logToStderr(`method ${req.name} called`)
      return { status: 200, payload: { method: req.name, received: req.payload } }
    })
    await client.onDesired((patch) => {
      this.logToStderr(`desired patch $version ${String(patch.$version)}: reporting it back`)
      const { $version: _v, ...rest } = patch
      void client.reportProperties(rest).catch((err: unknown) => this.logToStderr(`report failed: ${(err as Error).message}`))
    })
    let stop = false
    process.once('SIGINT', () => (stop = true))
    let sent = 0
    for (let i = 0; !stop && (f.count === 0 || i < f.count); i++) {
      const body = f.data.replace(/\{\{index\}\}/g, String(i)).replace(/\{\{random\}\}/g, (20 + Math.random() * 10).toFixed(2))
      await client.sendTelemetry(body)
      sent++
      if (f.count === 0 || i < f.count - 1) await new Promise((r) => setTimeout(r, intervalMs))
    }
    await client.close()
    this.print({ sent, device: deviceId })
  }
}
