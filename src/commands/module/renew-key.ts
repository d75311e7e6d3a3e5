import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, noProgressFlag, pick } from '../../cli/flags.js'
import { renewModuleKeys } from '../../service/identity.js'

export default class ModuleRenewKey extends BaseCommand<typeof ModuleRenewKey> {
  static summary = 'Renew (regenerate) or swap a module\'s SAS keys (az iot hub module-identity renew-key).'
  static description =
    'One module prints its identity with the new keys; several (-m a b, or -m "*" for all of the device\'s SAS modules) print az\'s bulk result {policyKey, errors, rotatedKeys: [{id, moduleId, primaryKey, secondaryKey}]}.'
  static aliases = ['hub:module-identity:renew-key']
  static examples = ['<%= config.bin %> hub module-identity renew-key -d edge-gateway -m filter --kt primary', '<%= config.bin %> module renew-key -d edge-gateway -m "*" --kt secondary']
  static flags = {
    device: deviceFlag,
    module: Flags.string({ char: 'm', aliases: ['module-id'], multiple: true, required: true, summary: 'Module id (repeat for several; * = all).' }),
    'key-type': Flags.option({ aliases: ['kt'], options: ['primary', 'secondary', 'swap'] as const, required: true, summary: 'Which key to regenerate, or swap.' })(),
    etag: Flags.string({ char: 'e', summary: 'Only while the module still has this etag.' }),
    'no-progress': noProgressFlag,
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const deviceId = pick('device', undefined, this.flags.device, '-d/--device-id')
    this.print(await renewModuleKeys(await this.hub(), deviceId, this.flags.module, this.flags['key-type'], { etag: this.flags.etag }))
  }
}
