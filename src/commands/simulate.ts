import { Flags } from '@oclif/core'

import { BaseCommand } from '../cli/base.js'
import { deviceFlag, moduleFlag, pick } from '../cli/flags.js'
import { DeviceClient } from '../device/device-client.js'

export default class Simulate extends BaseCommand<typeof Simulate> {
  static summary = 'Simulate a device: send telemetry on an interval, answer direct methods, mirror desired properties into reported.'
  static aliases = ['device:simulate', 'iot:device:simulate']
  static examples = [
    '<%= config.bin %> simulate --device sensor --count 10 --interval 1000',
    '<%= config.bin %> device simulate -d sensor --msg-count 5 --data \'{"temperature": {{random}}}\'',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    count: Flags.integer({ aliases: ['msg-count', 'mc'], summary: 'Messages to send (0 = until Ctrl-C).', default: 100, min: 0 }),
    interval: Flags.integer({ aliases: ['msg-interval', 'mi'], summary: 'Milliseconds between messages.', default: 3000, min: 1 }),
    data: Flags.string({ summary: 'Body template; {{index}} and {{random}} are replaced.', default: '{"temperature": {{random}}, "index": {{index}}}' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    const deviceId = pick('device', undefined, f.device, '-d/--device')
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
      if (f.count === 0 || i < f.count - 1) await new Promise((r) => setTimeout(r, f.interval))
    }
    await client.close()
    this.print({ sent, device: deviceId })
  }
}
