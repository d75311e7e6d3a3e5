import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceAuthFlags, deviceFlag, hubTargetFlags, moduleFlag, pick } from '../../cli/flags.js'
import { DeviceClient } from '../../device/device-client.js'
import { readDocumentBytes } from '../../service/edgehub.js'

export default class TelemetrySend extends BaseCommand<typeof TelemetrySend> {
  static summary = 'Send device-to-cloud telemetry as a device or module (over MQTT, like a device SDK).'
  static aliases = ['device:send-d2c-message', 'iot:device:send-d2c-message']
  static examples = [
    '<%= config.bin %> telemetry send --device sensor --data \'{"temperature": 21}\'',
    '<%= config.bin %> device send-d2c-message -d sensor --data hello --props "alert=true;$.ct=text/plain"',
    '<%= config.bin %> telemetry send -d edge-gateway -m filter --output-name alerts --data \'{"t":40}\' --count 10 --interval 100',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    ...hubTargetFlags,
    ...deviceAuthFlags,
    data: Flags.string({ aliases: ['da'], summary: 'Body (JSON or text).', default: 'Ping from edgemq', exclusive: ['data-file-path'] }),
    'data-file-path': Flags.string({ aliases: ['dfp'], summary: 'az: send this file\'s bytes as the body.' }),
    props: Flags.string({ char: 'p', aliases: ['properties'], summary: 'Properties: a=1;b=2 (az) or a=1&b=2; $.ct, $.ce, $.mid are system properties.' }),
    'output-name': Flags.string({ summary: 'Module output name ($.on), for routes FROM /messages/modules/<m>/outputs/<o>.' }),
    count: Flags.integer({ aliases: ['msg-count', 'mc'], summary: 'How many messages.', default: 1, min: 1 }),
    interval: Flags.integer({ summary: 'Milliseconds between messages.', default: 0, min: 0 }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const deviceId = pick('device', undefined, f.device, '-d/--device')
    const file = f['data-file-path'] ? readDocumentBytes(f['data-file-path']) : undefined
    const client = await DeviceClient.connect(await this.hub(), { deviceId, moduleId: f.module }, {}, { symmetricKey: f['symmetric-key'], modelId: f['model-id'] })
    try {
      for (let i = 0; i < f.count; i++) {
        if (i > 0 && f.interval > 0) await new Promise((r) => setTimeout(r, f.interval))
        await client.sendTelemetry(file ?? f.data.replace(/\{\{index\}\}/g, String(i)), f.props, f['output-name'])
      }
    } finally {
      await client.close()
    }
    this.print({ sent: f.count, device: deviceId, ...(f.module ? { module: f.module } : {}) })
  }
}
