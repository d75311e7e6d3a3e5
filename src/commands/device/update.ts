import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { parseAuthType } from '../../cli/auth-type.js'
import { deviceArg, deviceFlag, hubTargetFlags, identityForceStringFlag, pick } from '../../cli/flags.js'
import { deviceView } from '../../registry/views.js'
import { deviceSetPatch, mergeDefined, parentFromScope } from '../../service/identity.js'

export default class DeviceUpdate extends BaseCommand<typeof DeviceUpdate> {
  static summary = 'Update a device: status, authentication type, keys, thumbprints, parent.'
  static description = 'Disabling a device disconnects it from a running broker within a second.'
  static aliases = ['hub:device-identity:update']
  static examples = [
    '<%= config.bin %> device update sub_client --status disabled',
    '<%= config.bin %> hub device-identity update -d sub_client --sta enabled',
    '<%= config.bin %> device update sub_client --primary-key "$(openssl rand -base64 32)"',
    '<%= config.bin %> hub device-identity update -d sub_client --set status=disabled statusReason=maintenance',
    '<%= config.bin %> hub device-identity update -d gw2 --ee true',
    '<%= config.bin %> hub device-identity update -d cam --am x509_ca',
    '<%= config.bin %> hub device-identity update -d cam --am shared_private_key',
  ]
  static args = { deviceId: deviceArg }
  static flags = {
    device: deviceFlag,
    ...hubTargetFlags,
    status: Flags.option({ aliases: ['sta'], options: ['enabled', 'disabled'] as const, summary: 'enabled | disabled.' })(),
    'status-reason': Flags.string({ aliases: ['star'], summary: 'Why.' }),
    'primary-key': Flags.string({ aliases: ['pk'], summary: 'New primary key.' }),
    'secondary-key': Flags.string({ aliases: ['sk'], summary: 'New secondary key.' }),
    'primary-thumbprint': Flags.string({ aliases: ['ptp'], summary: 'New primary thumbprint.' }),
    'secondary-thumbprint': Flags.string({ aliases: ['stp'], summary: 'New secondary thumbprint.' }),
    pd: Flags.string({ aliases: ['parent-device-id'], summary: 'New parent edge device ("" removes it).' }),
    'device-scope': Flags.string({ summary: 'New parent by device scope (az --device-scope).' }),
    set: Flags.string({ multiple: true, summary: 'az generic update: path=value (status, statusReason, capabilities.iotEdge, authentication.symmetricKey.primaryKey, …).' }),
    'force-string': identityForceStringFlag,
    edge: Flags.boolean({ aliases: ['ee', 'edge-enabled'], allowNo: true, summary: 'IoT Edge capability (az: --ee true|false).' }),
    etag: Flags.string({ char: 'e', summary: 'Only update if the device still has this etag.' }),
    auth: Flags.string({
      aliases: ['am', 'auth-method'],
      summary: 'New authentication: sas | x509-thumbprint (with --ptp) | x509-ca (az --am shared_private_key | x509_thumbprint | x509_ca); the old keys or thumbprints are dropped.',
    }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const ctx = await this.hub()
    const { registry } = ctx
    const scopeParent = f['device-scope'] ? await parentFromScope(ctx, f['device-scope']) : undefined
    const fromFlags = {
      status: f.status,
      statusReason: f['status-reason'],
      primaryKey: f['primary-key'],
      secondaryKey: f['secondary-key'],
      primaryThumbprint: f['primary-thumbprint'],
      secondaryThumbprint: f['secondary-thumbprint'],
      parentId: f.pd === '' ? null : (f.pd ?? scopeParent),
      edge: f.edge,
      etag: f.etag,
      authType: parseAuthType(f.auth),
    }
    const device = await registry.updateDevice(pick('device', this.args.deviceId, f.device, '-d/--device'), mergeDefined(deviceSetPatch(f.set ?? []), fromFlags))
    const parent = await registry.parentOf(device)
    this.print(deviceView(device, parent))
  }
}
