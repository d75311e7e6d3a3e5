import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceArg, deviceFlag, hubTargetFlags, pick } from '../../cli/flags.js'
import { parseAuthType } from '../../cli/auth-type.js'
import { UsageError } from '../../errors.js'
import { deviceView } from '../../registry/views.js'
import { parentFromScope, selfSignedForCreate } from '../../service/identity.js'

export default class DeviceCreate extends BaseCommand<typeof DeviceCreate> {
  static summary = 'Create a device identity in the local registry.'
  static description =
    'Keys are generated unless given. --vd/--od make a self-signed certificate and register its thumbprint (az). ' +
    'Alias: `edgemq hub device-identity create` (az iot hub device-identity create).'
  static aliases = ['hub:device-identity:create']
  static examples = [
    '<%= config.bin %> device create sub_client --pd edge-gateway',
    '<%= config.bin %> hub device-identity create --device-id sub_client --hub-name edgemq --pd edge-gateway',
    '<%= config.bin %> hub device-identity create -d cam1 --am x509_thumbprint --ptp 9A1B… --stp 77C2…',
    '<%= config.bin %> hub device-identity create -d cam2 --am x509_thumbprint --vd 30 --od ./certs',
    '<%= config.bin %> device create gw2 --ee true',
  ]
  static args = { deviceId: deviceArg }
  static flags = {
    device: deviceFlag,
    ...hubTargetFlags,
    pd: Flags.string({ aliases: ['parent-device-id', 'parent'], summary: 'Parent IoT Edge device id.' }),
    'device-scope': Flags.string({ summary: 'Parent by device scope (ms-azure-iot-edge://<edge>-<generation>, az --device-scope).' }),
    edge: Flags.boolean({ aliases: ['ee', 'edge-enabled'], summary: 'Make it an IoT Edge device (az: --ee [true|false]).' }),
    auth: Flags.string({ aliases: ['am', 'auth-method'], summary: 'sas | x509-thumbprint | x509-ca (az: shared_private_key | x509_thumbprint | x509_ca).', default: 'sas' }),
    'primary-key': Flags.string({ aliases: ['pk'], summary: 'Primary key (base64, 16–64 bytes).' }),
    'secondary-key': Flags.string({ aliases: ['sk'], summary: 'Secondary key.' }),
    'primary-thumbprint': Flags.string({ aliases: ['ptp'], summary: 'Primary X.509 thumbprint (SHA-1 or SHA-256).' }),
    'secondary-thumbprint': Flags.string({ aliases: ['stp'], summary: 'Secondary X.509 thumbprint.' }),
    'valid-days': Flags.integer({ aliases: ['vd'], min: 1, summary: 'Make a self-signed certificate valid this many days and use its thumbprint (x509_thumbprint).' }),
    'output-dir': Flags.string({ aliases: ['od'], summary: 'Where the self-signed certificate and key go (must exist; default <home>/certs).' }),
    status: Flags.option({ aliases: ['sta'], options: ['enabled', 'disabled'] as const, summary: 'Initial status.' })(),
    'status-reason': Flags.string({ aliases: ['star'], summary: 'Why the status was set.' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const ctx = await this.hub()
    const deviceId = pick('device', this.args.deviceId, f.device, '-d/--device')
    const auth = parseAuthType(f.auth)
    let primaryThumbprint = f['primary-thumbprint']
    if (f['valid-days'] !== undefined || f['output-dir'] !== undefined) {
      if (auth !== 'selfSigned') throw new UsageError('--vd/--od make a self-signed certificate: they need --am x509_thumbprint')
      const cert = await selfSignedForCreate(ctx, deviceId, { days: f['valid-days'], outDir: f['output-dir'] })
      primaryThumbprint = cert.thumbprints.sha256
      this.logToStderr(`self-signed certificate: ${cert.certFile}, key: ${cert.keyFile}`)
    }
    if (f.pd && f['device-scope']) throw new UsageError('give the parent once: --pd or --device-scope')
    const device = await ctx.registry.createDevice({
      deviceId,
      parentId: f['device-scope'] ? await parentFromScope(ctx, f['device-scope']) : f.pd,
      edge: f.edge,
      auth,
      primaryKey: f['primary-key'],
      secondaryKey: f['secondary-key'],
      primaryThumbprint,
      secondaryThumbprint: f['secondary-thumbprint'],
      status: f.status,
      statusReason: f['status-reason'],
    })
    const parent = await ctx.registry.parentOf(device)
    this.print(deviceView(device, parent), { columns: ['deviceId', 'status', 'authentication.type', 'capabilities.iotEdge', 'parentScopes'] })
  }
}
