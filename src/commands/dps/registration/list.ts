import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { REGISTRATION_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'
import { Dps } from '../../../dps/index.js'

export default class DpsRegistrationList extends BaseCommand<typeof DpsRegistrationList> {
  static summary = 'List device registration states, all or one enrollment group\'s (az iot dps enrollment-group registration list).'
  static examples = ['<%= config.bin %> dps registration list', '<%= config.bin %> dps registration list --gid sensors -o table']
  static flags = { 'group-id': Flags.string({ aliases: ['gid', 'enrollment-id', 'eid'], summary: 'Only this enrollment group\'s registrations.' }), ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = new Dps(await this.hub())
    this.print(await dps.listRegistrations(this.flags['group-id']), { columns: REGISTRATION_COLUMNS })
  }
}
