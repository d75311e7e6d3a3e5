import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, moduleArg, moduleFlag, pick } from '../../cli/flags.js'
import { moduleView } from '../../registry/views.js'

export default class ModuleShow extends BaseCommand<typeof ModuleShow> {
  static summary = 'Show a module identity.'
  static aliases = ['hub:module-identity:show']
  static examples = ['<%= config.bin %> module show --device edge-gateway filter', '<%= config.bin %> hub module-identity show -d edge-gateway -m \'$edgeHub\'']
  static args = { moduleId: moduleArg }
  static flags = { device: deviceFlag, module: moduleFlag, ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { registry } = await this.hub()
    const m = await registry.getModule(pick('device', undefined, this.flags.device, '--device'), pick('module', this.args.moduleId, this.flags.module, '-m/--module'))
    this.print(moduleView(m))
  }
}
