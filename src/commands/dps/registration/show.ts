import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { REGISTRATION_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'
import { Dps } from '../../../dps/index.js'

export default class DpsRegistrationShow extends BaseCommand<typeof DpsRegistrationShow> {
  static summary = 'Show a device registration state (az iot dps enrollment registration show).'
  static examples = ['<%= config.bin %> dps registration show --rid thermo-1', '<%= config.bin %> dps registration show --registration-id sensor-042 -o table']
  static flags = { 'registration-id': Flags.string({ aliases: ['rid', 'eid', 'enrollment-id'], summary: 'Registration id.', required: true }), ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = new Dps(await this.hub())
    this.print(await dps.getRegistration(this.flags['registration-id']), { columns: REGISTRATION_COLUMNS })
  }
}
