import { BaseCommand } from '../../../cli/base.js'
import { dpsScopeFlags, enrollmentIdFlag, etagFlag } from '../../../cli/dps-flags.js'

export default class DpsEnrollmentDelete extends BaseCommand<typeof DpsEnrollmentDelete> {
  static summary = 'Delete an individual enrollment (az iot dps enrollment delete); the device identity stays.'
  static examples = ['<%= config.bin %> dps enrollment delete --eid thermo-1', '<%= config.bin %> dps enrollment delete --eid thermo-1 --etag AAAAAAAAAAE=']
  static flags = { 'enrollment-id': enrollmentIdFlag, etag: etagFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const id = this.flags['enrollment-id']
    await (await this.dps()).deleteEnrollment(id, this.flags.etag)
    if (this.flags.output === 'json') this.print({ deleted: id })
    else this.log(`deleted enrollment ${id}`)
  }
}
