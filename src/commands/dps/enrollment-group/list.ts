import { BaseCommand } from '../../../cli/base.js'
import { GROUP_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'
import { topFlag, topOf } from '../../../cli/flags.js'

export default class DpsEnrollmentGroupList extends BaseCommand<typeof DpsEnrollmentGroupList> {
  static summary = 'List the enrollment groups (az iot dps enrollment-group list).'
  static examples = ['<%= config.bin %> dps enrollment-group list', '<%= config.bin %> dps enrollment-group list -o table']
  static flags = { top: topFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = await this.dps()
    this.print(topOf(await dps.listEnrollmentGroups(), this.flags.top), { columns: GROUP_COLUMNS })
  }
}
