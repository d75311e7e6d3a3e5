import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { ENROLLMENT_COLUMNS, enrollmentFlagValues, enrollmentFlags, enrollmentIdFlag } from '../../../cli/dps-flags.js'
import { enrollmentBody } from '../../../dps/cli-input.js'
import { UsageError } from '../../../errors.js'

export default class DpsEnrollmentCreate extends BaseCommand<typeof DpsEnrollmentCreate> {
  static summary = 'Create an individual enrollment in the hub\'s DPS (az iot dps enrollment create).'
  static description = 'Symmetric key (keys generated unless given) or X.509 (the device certificate). Devices register with the DPS on the broker\'s TLS port and are assigned to this hub.'
  static examples = [
    '<%= config.bin %> dps enrollment create --enrollment-id thermo-1 --attestation-type symmetrickey',
    '<%= config.bin %> dps enrollment create --eid cam-1 --at x509 --cp ./cam-1.cert.pem --initial-twin-tags \'{"site":"lab"}\'',
    '<%= config.bin %> dps enrollment create --eid gw-2 --at symmetrickey --edge-enabled true -o table',
  ]
  static flags = {
    'enrollment-id': enrollmentIdFlag,
    'device-id': Flags.string({ char: 'd', aliases: ['did'], summary: 'Device id to create (default: the registration id).' }),
    ...enrollmentFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    if (!f['attestation-type']) throw new UsageError('--attestation-type is required (symmetrickey or x509)')
    const dps = await this.dps()
    const e = await dps.putEnrollment(enrollmentBody('enrollment', enrollmentFlagValues(f)), { mode: 'create', id: f['enrollment-id'] })
    this.print(e, { columns: ENROLLMENT_COLUMNS })
  }
}
