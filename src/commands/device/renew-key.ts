import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubTargetFlags, noProgressFlag } from '../../cli/flags.js'
import { renewDeviceKeys } from '../../service/identity.js'

export default class DeviceRenewKey extends BaseCommand<typeof DeviceRenewKey> {
  static summary = 'Renew (regenerate) or swap a device\'s SAS keys (az iot hub device-identity renew-key).'
  static description =
    'One device prints its identity with the new keys; several (-d a b, or -d "*" for every SAS device), or --include-modules (the SAS modules of those devices too), print az\'s bulk result {policyKey, errors, rotatedKeys: [{id, moduleId?, primaryKey, secondaryKey}]}. swap exchanges primary and secondary (one device only).'
  static aliases = ['hub:device-identity:renew-key']
  static examples = [
    '<%= config.bin %> hub device-identity renew-key -d sensor --kt primary',
    '<%= config.bin %> device renew-key -d sensor --kt swap',
    '<%= config.bin %> device renew-key -d "*" --kt secondary',
    '<%= config.bin %> hub device-identity renew-key -d edge-gateway --kt primary --im',
  ]
  static flags = {
    device: Flags.string({ char: 'd', aliases: ['device-id'], multiple: true, required: true, summary: 'Device id (repeat for several; * = every SAS device).' }),
    'key-type': Flags.option({ aliases: ['kt'], options: ['primary', 'secondary', 'swap'] as const, required: true, summary: 'Which key to regenerate, or swap.' })(),
    etag: Flags.string({ char: 'e', summary: 'Only while the device still has this etag.' }),
    'include-modules': Flags.boolean({ aliases: ['im'], summary: 'Renew the SAS keys of the devices\' modules too (az --im [true|false]).' }),
    'no-progress': noProgressFlag,
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    this.print(await renewDeviceKeys(await this.hub(), this.flags.device, this.flags['key-type'], { etag: this.flags.etag, includeModules: this.flags['include-modules'] }))
  }
}
