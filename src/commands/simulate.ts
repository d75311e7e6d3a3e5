import { Flags } from '@oclif/core'

import { BaseCommand } from '../cli/base.js'
import { deviceAuthFlags, deviceFlag, hubTargetFlags, moduleFlag, pick } from '../cli/flags.js'
import { UsageError } from '../errors.js'
import { DeviceClient, simulateIntervalMs } from '../device/device-client.js'
import { parseJsonArg } from '../service/hub-service.js'

export default class Simulate extends BaseCommand<typeof Simulate> {
  static summary = 'Simulate a device: send telemetry on an interval, answer direct methods, mirror desired properties into reported.'
  static aliases = ['device:simulate', 'iot:device:simulate']
  static examples = [
    '<%= config.bin %> simulate --device sensor --count 10 --interval 1000',
    '<%= config.bin %> device simulate -d sensor --msg-count 5 --mi 2 --data \'{"temperature": {{random}}}\'',
    '<%= config.bin %> device simulate -d sensor --mc 0 --mrc 202 --mrp \'{"ok":true}\' --irp \'{"fw":"1.0"}\' -p "site=lab"',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    ...hubTargetFlags,
    ...deviceAuthFlags,
    count: Flags.integer({ aliases: ['msg-count', 'mc'], summary: 'Messages to send (0 = until Ctrl-C).', default: 100, min: 0 }),
    'msg-interval': Flags.integer({ aliases: ['mi'], summary: 'Seconds between messages (az: --msg-interval/--mi; default 3).', min: 0 }),
    interval: Flags.integer({ summary: 'Milliseconds between messages (edgemq; --mi is seconds, as az).', min: 1 }),
    data: Flags.string({ aliases: ['da'], summary: 'Body template; {{index}} and {{random}} are replaced.', default: '{"temperature": {{random}}, "index": {{index}}}' }),
    properties: Flags.string({ char: 'p', aliases: ['props'], summary: 'Message properties: a=1;b=2 (az); $.ct, $.ce, $.mid are system properties.' }),
    'method-response-code': Flags.integer({ aliases: ['mrc'], summary: 'Status every direct method is answered with (az; default 200).', default: 200 }),
    'method-response-payload': Flags.string({ aliases: ['mrp'], summary: 'JSON every direct method is answered with (az; default: the method name and what it received).' }),
    'init-reported-properties': Flags.string({ aliases: ['irp'], summary: 'JSON reported properties sent once at start (az).' }),
    'receive-settle': Flags.string({ aliases: ['rs'], summary: 'How C2D messages are settled: complete (MQTT acknowledges, so only complete; as az over MQTT).', options: ['complete', 'abandon', 'reject'], default: 'complete' }),
    protocol: Flags.string({ aliases: ['proto'], summary: 'az: mqtt only (edgemq devices speak MQTT).', options: ['mqtt', 'http', 'amqp'], default: 'mqtt' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const deviceId = pick('device', undefined, f.device, '-d/--device')
    if (f['msg-interval'] !== undefined && f.interval !== undefined) throw new UsageError('pass either --mi/--msg-interval (seconds) or --interval (milliseconds), not both')
    if (f.protocol !== 'mqtt') throw new UsageError(`--proto ${f.protocol} is not simulated by edgemq`, 'use --proto mqtt (the default)')
    if (f['receive-settle'] !== 'complete') throw new UsageError(`--rs ${f['receive-settle']} needs --proto http; over MQTT a C2D message is completed when acknowledged`, 'settle queued messages with `edgemq c2d receive --abandon/--reject`')
    const intervalMs = simulateIntervalMs({ msgIntervalSecs: f['msg-interval'], intervalMs: f.interval })
    const methodPayload = f['method-response-payload'] === undefined ? undefined : parseJsonArg(f['method-response-payload'], '--method-response-payload')
    const initReported = f['init-reported-properties'] === undefined ? undefined : parseJsonArg(f['init-reported-properties'], '--init-reported-properties')
    const client = await DeviceClient.connect(await this.hub(), { deviceId, moduleId: f.module }, {}, { symmetricKey: f['symmetric-key'], modelId: f['model-id'] })
    if (initReported !== undefined) await client.reportProperties(initReported)
    await client.onMethod((req) => {
      this.logToStderr(`method ${req.name} called`)
      return { status: f['method-response-code'], payload: methodPayload ?? { method: req.name, received: req.payload } }
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
      await client.sendTelemetry(body, f.properties)
      sent++
      if (f.count === 0 || i < f.count - 1) await new Promise((r) => setTimeout(r, intervalMs))
    }
    await client.close()
    this.print({ sent, device: deviceId })
  }
}
