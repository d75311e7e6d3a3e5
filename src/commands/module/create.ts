import { Flags } from '@oclif/core'

import { parseAuthType } from '../../cli/auth-type.js'
import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, moduleArg, moduleFlag, pick } from '../../cli/flags.js'
import { moduleView } from '../../registry/views.js'

export default class ModuleCreate extends BaseCommand<typeof ModuleCreate> {
  static summary = 'Create a module identity on a device.'
  static aliases = ['hub:module-identity:create']
  static examples = [
    '<%= config.bin %> module create --device edge-gateway filter',
    '<%= config.bin %> hub module-identity create -d edge-gateway -m filter -n edgemq',
  ]
  static args = { moduleId: moduleArg }
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    ...hubTargetFlags,
    'primary-key': Flags.string({ aliases: ['pk'], summary: 'Primary key (base64, 16–64 bytes).' }),
    'secondary-key': Flags.string({ aliases: ['sk'], summary: 'Secondary key.' }),
    auth: Flags.string({ aliases: ['am', 'auth-method'], summary: 'Modules use SAS only (as IoT Edge).', default: 'sas' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const { registry } = await this.hub()
    const m = await registry.createModule({
      deviceId: pick('device', undefined, f.device, '--device'),
      moduleId: pick('module', this.args.moduleId, f.module, '-m/--module'),
      // An unknown value is a usage error; x509 ones are refused by the registry (modules use SAS only).
      auth: parseAuthType(f.auth),
      primaryKey: f['primary-key'],
      secondaryKey: f['secondary-key'],
    })
    this.print(moduleView(m), { columns: ['deviceId', 'moduleId', 'authentication.type'] })
  }
}
