import { BaseCommand } from '../../../cli/base.js'
import { GROUP_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'
import { Dps } from '../../../dps/index.js'

export default class DpsEnrollmentGroupList extends BaseCommand<typeof DpsEnrollmentGroupList> {
  static summary = 'List the enrollment groups (az iot dps enrollment-group list).'
  static examples = ['<%= config.bin %> dps enrollment-group list', '<%= config.bin %> dps enrollment-group list -o table']
  static flags = { ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = new Dps(await this.hub())
    this.print(await dps.listEnrollmentGroups(), { columns: GROUP_COLUMNS })
  }
}
