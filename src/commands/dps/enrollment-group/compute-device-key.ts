import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { dpsScopeFlags } from '../../../cli/dps-flags.js'
import { Dps } from '../../../dps/index.js'
import { UsageError } from '../../../errors.js'

export default class DpsEnrollmentGroupComputeDeviceKey extends BaseCommand<typeof DpsEnrollmentGroupComputeDeviceKey> {
  static summary = 'The symmetric key a device of an enrollment group signs with (az iot dps enrollment-group compute-device-key).'
  static aliases = ['dps:compute-device-key']
  static description = 'base64(HMAC-SHA256(key = the group key, base64-decoded; message = the registration id)). With --key it needs no hub at all.'
  static examples = [
    '<%= config.bin %> dps enrollment-group compute-device-key --gid sensors --rid sensor-042',
    '<%= config.bin %> dps enrollment-group compute-device-key --key "$GROUP_KEY" --registration-id sensor-042 -o tsv',
  ]
  static flags = {
    'enrollment-id': Flags.string({ aliases: ['eid', 'group-id', 'gid'], summary: 'Enrollment group whose primary key to use.' }),
    key: Flags.string({ aliases: ['symmetric-key'], summary: 'The group key itself (offline: no hub is read).' }),
    'registration-id': Flags.string({ aliases: ['rid'], summary: 'The device\'s registration id.', required: true }),
    ...dpsScopeFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    if (!f.key && !f['enrollment-id']) throw new UsageError('give --enrollment-id (the group) or --key (its key)')
    if (f.key && f['enrollment-id']) throw new UsageError('give either --enrollment-id or --key, not both')
    const key = f.key ? await Dps.deviceKey(f.key, f['registration-id']) : await (await this.dps()).computeDeviceKey(f['registration-id'], { groupId: f['enrollment-id'] })
    this.print({ registrationId: f['registration-id'], key })
  }
}
