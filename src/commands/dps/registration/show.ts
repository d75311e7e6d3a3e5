import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { REGISTRATION_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'

export default class DpsRegistrationShow extends BaseCommand<typeof DpsRegistrationShow> {
  static summary = 'Show a device registration state (az iot dps enrollment registration show).'
  static aliases = ['dps:enrollment:registration:show', 'dps:enrollment-group:registration:show']
  static examples = ['<%= config.bin %> dps registration show --rid thermo-1', '<%= config.bin %> dps registration show --registration-id sensor-042 -o table']
  static flags = { 'registration-id': Flags.string({ aliases: ['rid', 'eid', 'enrollment-id'], summary: 'Registration id.', required: true }), ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = await this.dps()
    this.print(await dps.getRegistration(this.flags['registration-id']), { columns: REGISTRATION_COLUMNS })
  }
}
