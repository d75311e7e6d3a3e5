import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, identityForceStringFlag, moduleArg, moduleFlag, pick } from '../../cli/flags.js'
import { moduleView } from '../../registry/views.js'
import { mergeDefined, moduleSetPatch } from '../../service/identity.js'

export default class ModuleUpdate extends BaseCommand<typeof ModuleUpdate> {
  static summary = 'Update a module identity: keys, managedBy (az iot hub module-identity update).'
  static description = 'az\'s generic update: --set authentication.symmetricKey.primaryKey=<key> (or --pk/--sk). A new etag.'
  static aliases = ['hub:module-identity:update']
  static examples = [
    '<%= config.bin %> hub module-identity update -d edge-gateway -m filter --set authentication.symmetricKey.primaryKey="$(openssl rand -base64 32)"',
    '<%= config.bin %> module update filter -d edge-gateway --sk "$(openssl rand -base64 32)"',
  ]
  static args = { moduleId: moduleArg }
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    set: Flags.string({ multiple: true, summary: 'path=value: authentication.symmetricKey.primaryKey, …secondaryKey, managedBy.' }),
    'force-string': identityForceStringFlag,
    'primary-key': Flags.string({ aliases: ['pk'], summary: 'New primary key.' }),
    'secondary-key': Flags.string({ aliases: ['sk'], summary: 'New secondary key.' }),
    etag: Flags.string({ char: 'e', summary: 'Only update while the module still has this etag.' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const { registry } = await this.hub()
    const deviceId = pick('device', undefined, f.device, '-d/--device-id')
    const moduleId = pick('module', this.args.moduleId, f.module, '-m/--module-id')
    const patch = mergeDefined(moduleSetPatch(f.set ?? []), { primaryKey: f['primary-key'], secondaryKey: f['secondary-key'], etag: f.etag })
    this.print(moduleView(await registry.updateModule(deviceId, moduleId, patch)))
  }
}
