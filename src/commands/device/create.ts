import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceArg, deviceFlag, hubNameFlag, pick } from '../../cli/flags.js'
import { parseAuthType } from '../../cli/auth-type.js'
import { deviceView } from '../../registry/views.js'

export default class DeviceCreate extends BaseCommand<typeof DeviceCreate> {
  static summary = 'Create a device identity in the local registry.'
  static description = 'Keys are generated unless given. Alias: `edgemq hub device-identity create` (az iot hub device-identity create).'
  static aliases = ['hub:device-identity:create']
  static examples = [
    '<%= config.bin %> device create sub_client --pd edge-gateway',
    '<%= config.bin %> hub device-identity create --device-id sub_client --hub-name edgemq --pd edge-gateway',
    '<%= config.bin %> device create cam1 --auth x509-thumbprint --primary-thumbprint 9A1B…',
    '<%= config.bin %> device create gw2 --edge',
  ]
  static args = { deviceId: deviceArg }
  static flags = {
    device: deviceFlag,
    'hub-name': hubNameFlag,
    pd: Flags.string({ aliases: ['parent-device-id', 'parent'], summary: 'Parent IoT Edge device id.' }),
    edge: Flags.boolean({ aliases: ['ee', 'edge-enabled'], summary: 'Make it an IoT Edge device.' }),
    auth: Flags.string({ aliases: ['am', 'auth-method'], summary: 'sas | x509-thumbprint | x509-ca (az: shared_private_key | self_signed | x509_ca).', default: 'sas' }),
    'primary-key': Flags.string({ aliases: ['pk'], summary: 'Primary key (base64, 16–64 bytes).' }),
    'secondary-key': Flags.string({ aliases: ['sk'], summary: 'Secondary key.' }),
    'primary-thumbprint': Flags.string({ aliases: ['ptp'], summary: 'Primary X.509 thumbprint (SHA-1 or SHA-256).' }),
    'secondary-thumbprint': Flags.string({ aliases: ['stp'], summary: 'Secondary X.509 thumbprint.' }),
    status: Flags.option({ aliases: ['sta'], options: ['enabled', 'disabled'] as const, summary: 'Initial status.' })(),
    'status-reason': Flags.string({ aliases: ['star'], summary: 'Why the status was set.' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const { registry } = await this.hub()
    const device = await registry.createDevice({
      deviceId: pick('device', this.args.deviceId, f.device, '-d/--device'),
      parentId: f.pd,
      edge: f.edge,
      auth: parseAuthType(f.auth),
      primaryKey: f['primary-key'],
      secondaryKey: f['secondary-key'],
      primaryThumbprint: f['primary-thumbprint'],
      secondaryThumbprint: f['secondary-thumbprint'],
      status: f.status,
      statusReason: f['status-reason'],
    })
    const parent = await registry.parentOf(device)
    this.print(deviceView(device, parent), { columns: ['deviceId', 'status', 'authentication.type', 'capabilities.iotEdge', 'parentScopes'] })
  }
}
