import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { dpsScopeFlags, etagFlag } from '../../../cli/dps-flags.js'

export default class DpsRegistrationDelete extends BaseCommand<typeof DpsRegistrationDelete> {
  static summary = 'Delete a device registration state (az iot dps enrollment registration delete): the next registration is a first one.'
  static aliases = ['dps:enrollment:registration:delete', 'dps:enrollment-group:registration:delete']
  static examples = ['<%= config.bin %> dps registration delete --rid thermo-1', '<%= config.bin %> dps registration delete --registration-id sensor-042 --etag "…"']
  static flags = { 'registration-id': Flags.string({ aliases: ['rid', 'eid', 'enrollment-id'], summary: 'Registration id.', required: true }), etag: etagFlag, ...dpsScopeFlags }

  async run(): Promise<void> {
    const id = this.flags['registration-id']
    await (await this.dps()).deleteRegistration(id, this.flags.etag)
    if (this.flags.output === 'json') this.print({ deleted: id })
    else this.log(`deleted registration ${id}`)
  }
}
