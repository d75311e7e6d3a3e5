import { BaseCommand } from '../../../cli/base.js'
import { ENROLLMENT_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'
import { topFlag, topOf } from '../../../cli/flags.js'

export default class DpsEnrollmentList extends BaseCommand<typeof DpsEnrollmentList> {
  static summary = 'List the individual enrollments (az iot dps enrollment list).'
  static examples = ['<%= config.bin %> dps enrollment list', '<%= config.bin %> dps enrollment list -o table']
  static flags = { top: topFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = await this.dps()
    this.print(topOf(await dps.listEnrollments(), this.flags.top), { columns: ENROLLMENT_COLUMNS })
  }
}
