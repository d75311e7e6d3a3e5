import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, pick, topFlag, topOf } from '../../cli/flags.js'
import { MODULE_COLUMNS, moduleView } from '../../registry/views.js'

export default class ModuleList extends BaseCommand<typeof ModuleList> {
  static summary = 'List the modules of a device.'
  static aliases = ['hub:module-identity:list']
  static examples = ['<%= config.bin %> module list --device edge-gateway', '<%= config.bin %> hub module-identity list -d edge-gateway -o table']
  static flags = { device: deviceFlag, top: topFlag, ...hubTargetFlags }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { registry } = await this.hub()
    const mods = await registry.listModules(pick('device', undefined, this.flags.device, '--device'))
    this.print(topOf(mods, this.flags.top).map((m) => moduleView(m)), { columns: MODULE_COLUMNS })
  }
}
