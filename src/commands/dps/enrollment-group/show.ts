import { BaseCommand } from '../../../cli/base.js'
import { GROUP_COLUMNS, dpsScopeFlags, groupIdFlag } from '../../../cli/dps-flags.js'

export default class DpsEnrollmentGroupShow extends BaseCommand<typeof DpsEnrollmentGroupShow> {
  static summary = 'Show an enrollment group (az iot dps enrollment-group show).'
  static examples = ['<%= config.bin %> dps enrollment-group show --eid sensors', '<%= config.bin %> dps enrollment-group show --gid sensors -o table']
  static flags = { 'enrollment-id': groupIdFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = await this.dps()
    this.print(await dps.showEnrollmentGroup(this.flags['enrollment-id']), { columns: GROUP_COLUMNS })
  }
}
