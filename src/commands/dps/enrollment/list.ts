import { BaseCommand } from '../../../cli/base.js'
import { ENROLLMENT_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'
import { Dps } from '../../../dps/index.js'

export default class DpsEnrollmentList extends BaseCommand<typeof DpsEnrollmentList> {
  static summary = 'List the individual enrollments (az iot dps enrollment list).'
  static examples = ['<%= config.bin %> dps enrollment list', '<%= config.bin %> dps enrollment list -o table']
  static flags = { ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = new Dps(await this.hub())
    this.print(await dps.listEnrollments(), { columns: ENROLLMENT_COLUMNS })
  }
}
