import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { ENROLLMENT_COLUMNS, enrollmentFlagValues, enrollmentFlags, enrollmentIdFlag, etagFlag } from '../../../cli/dps-flags.js'
import { enrollmentBody } from '../../../dps/cli-input.js'

export default class DpsEnrollmentUpdate extends BaseCommand<typeof DpsEnrollmentUpdate> {
  static summary = 'Update an individual enrollment (az iot dps enrollment update): only the flags given change.'
  static examples = [
    '<%= config.bin %> dps enrollment update --eid thermo-1 --provisioning-status disabled',
    '<%= config.bin %> dps enrollment update --eid thermo-1 --initial-twin-properties \'{"interval":10}\' --etag AAAAAAAAAAE=',
  ]
  static flags = {
    'enrollment-id': enrollmentIdFlag,
    'device-id': Flags.string({ char: 'd', aliases: ['did'], summary: 'Device id to create (default: the registration id).' }),
    etag: etagFlag,
    ...enrollmentFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    const dps = await this.dps()
    const e = await dps.putEnrollment(enrollmentBody('enrollment', enrollmentFlagValues(f)), { mode: 'update', id: f['enrollment-id'], ifMatch: f.etag })
    this.print(e, { columns: ENROLLMENT_COLUMNS })
  }
}
