import { BaseCommand } from '../../../cli/base.js'
import { dpsScopeFlags, etagFlag, groupIdFlag } from '../../../cli/dps-flags.js'

export default class DpsEnrollmentGroupDelete extends BaseCommand<typeof DpsEnrollmentGroupDelete> {
  static summary = 'Delete an enrollment group (az iot dps enrollment-group delete); its devices\' identities stay.'
  static examples = ['<%= config.bin %> dps enrollment-group delete --eid sensors', '<%= config.bin %> dps enrollment-group delete --gid sensors --etag AAAAAAAAAAE=']
  static flags = { 'enrollment-id': groupIdFlag, etag: etagFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const id = this.flags['enrollment-id']
    await (await this.dps()).deleteEnrollmentGroup(id, this.flags.etag)
    if (this.flags.output === 'json') this.print({ deleted: id })
    else this.log(`deleted enrollment group ${id}`)
  }
}
