import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubTargetFlags } from '../../cli/flags.js'
import { readDocument } from '../../service/edgehub.js'
import { HubService } from '../../service/hub-service.js'

export default class ModuleSendInput extends BaseCommand<typeof ModuleSendInput> {
  static summary = 'Deliver a message to a module input, as edgeHub does for a route (iotedgehubdev\'s /api/v1/messages).'
  static description =
    'Publishes on devices/<edge>/modules/<m>/inputs/<input>/<props> at QoS 1: a connected module gets it at once, an offline one with a persistent session when it reconnects. Needs a running broker (exit 3 otherwise).'
  static examples = [
    '<%= config.bin %> module send-input --module filter --input input1 --data \'{"temperature": 35}\'',
    '<%= config.bin %> module send-input -m filter --input control --data @message.json --props \'level=high&source=script\'',
  ]
  static flags = {
    device: Flags.string({ char: 'd', aliases: ['device-id'], summary: 'The edge device (default: the hub\'s edge device).' }),
    module: Flags.string({ char: 'm', aliases: ['module-id'], summary: 'The module.', required: true }),
    input: Flags.string({ aliases: ['input-name'], summary: 'The module input name.', required: true }),
    data: Flags.string({ summary: 'Message body (text, or @file).', required: true }),
    props: Flags.string({ aliases: ['properties'], summary: 'Application properties, url-encoded (a=1&b=2).' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const ctx = await this.hub()
    const deviceId = f.device ?? ctx.hub.edgeDeviceId
    const body = f.data.startsWith('@') ? readDocument(f.data.slice(1)) : f.data
    await new HubService(ctx).sendModuleInput(deviceId, f.module, f.input, body, f.props)
    this.print({ deviceId, moduleId: f.module, input: f.input, bytes: Buffer.byteLength(body) })
  }
}
