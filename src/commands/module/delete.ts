import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, moduleArg, moduleFlag, pick } from '../../cli/flags.js'

export default class ModuleDelete extends BaseCommand<typeof ModuleDelete> {
  static summary = 'Delete a module identity.'
  static aliases = ['hub:module-identity:delete']
  static examples = ['<%= config.bin %> module delete --device edge-gateway filter', '<%= config.bin %> hub module-identity delete -d edge-gateway -m filter']
  static args = { moduleId: moduleArg }
  static flags = { device: deviceFlag, module: moduleFlag, etag: Flags.string({ char: 'e', summary: 'Only delete while the module still has this etag.' }), ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { registry } = await this.hub()
    const d = pick('device', undefined, this.flags.device, '--device')
    const m = pick('module', this.args.moduleId, this.flags.module, '-m/--module')
    await registry.deleteModule(d, m, { etag: this.flags.etag })
    if (this.flags.output === 'json') this.print({ deleted: `${d}/${m}` })
    else this.log(`deleted module ${d}/${m}`)
  }
}
