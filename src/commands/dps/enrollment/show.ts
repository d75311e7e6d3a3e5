import { BaseCommand } from '../../../cli/base.js'
import { ENROLLMENT_COLUMNS, dpsScopeFlags, enrollmentIdFlag } from '../../../cli/dps-flags.js'

export default class DpsEnrollmentShow extends BaseCommand<typeof DpsEnrollmentShow> {
  static summary = 'Show an individual enrollment, with its registration state (az iot dps enrollment show).'
  static examples = ['<%= config.bin %> dps enrollment show --eid thermo-1', '<%= config.bin %> dps enrollment show --enrollment-id thermo-1 -n my-dps -g my-rg']
  static flags = { 'enrollment-id': enrollmentIdFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = await this.dps()
    this.print(await dps.showEnrollment(this.flags['enrollment-id']), { columns: ENROLLMENT_COLUMNS })
  }
}
