import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { REGISTRATION_COLUMNS, dpsScopeFlags } from '../../../cli/dps-flags.js'
import { topFlag, topOf } from '../../../cli/flags.js'

export default class DpsRegistrationList extends BaseCommand<typeof DpsRegistrationList> {
  static summary = 'List device registration states, all or one enrollment group\'s (az iot dps enrollment-group registration list).'
  static aliases = ['dps:enrollment-group:registration:list']
  static examples = ['<%= config.bin %> dps registration list', '<%= config.bin %> dps registration list --gid sensors -o table']
  static flags = { 'group-id': Flags.string({ aliases: ['gid', 'enrollment-id', 'eid'], summary: 'Only this enrollment group\'s registrations.' }), top: topFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const dps = await this.dps()
    this.print(topOf(await dps.listRegistrations(this.flags['group-id']), this.flags.top), { columns: REGISTRATION_COLUMNS })
  }
}
