import { BaseCommand } from '../../../cli/base.js'
import { GROUP_COLUMNS, enrollmentFlagValues, enrollmentFlags, etagFlag, groupAttestationFlags, groupIdFlag } from '../../../cli/dps-flags.js'
import { enrollmentBody } from '../../../dps/cli-input.js'

export default class DpsEnrollmentGroupUpdate extends BaseCommand<typeof DpsEnrollmentGroupUpdate> {
  static summary = 'Update an enrollment group (az iot dps enrollment-group update): only the flags given change.'
  static examples = ['<%= config.bin %> dps enrollment-group update --gid sensors --provisioning-status disabled', '<%= config.bin %> dps enrollment-group update --eid sensors --pk $(openssl rand -base64 32)']
  static flags = { 'enrollment-id': groupIdFlag, etag: etagFlag, ...enrollmentFlags, ...groupAttestationFlags }

  async run(): Promise<void> {
    const f = this.flags
    const dps = await this.dps()
    const g = await dps.putEnrollmentGroup(enrollmentBody('enrollmentGroup', enrollmentFlagValues(f)), { mode: 'update', id: f['enrollment-id'], ifMatch: f.etag })
    this.print(g, { columns: GROUP_COLUMNS })
  }
}
