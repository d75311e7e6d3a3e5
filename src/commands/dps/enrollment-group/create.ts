import { BaseCommand } from '../../../cli/base.js'
import { GROUP_COLUMNS, enrollmentFlagValues, enrollmentFlags, groupAttestationFlags, groupIdFlag } from '../../../cli/dps-flags.js'
import { enrollmentBody } from '../../../dps/cli-input.js'

export default class DpsEnrollmentGroupCreate extends BaseCommand<typeof DpsEnrollmentGroupCreate> {
  static summary = 'Create an enrollment group (az iot dps enrollment-group create).'
  static description =
    'Symmetric key: each device signs with HMAC-SHA256(group key, registration id) (see compute-device-key). X.509: devices present certificates (CN = registration id) signed by the group\'s CA (--certificate-path) or by the hub CA (--ca-name hub).'
  static examples = [
    '<%= config.bin %> dps enrollment-group create --enrollment-id sensors --attestation-type symmetrickey',
    '<%= config.bin %> dps enrollment-group create --gid cams --ca-name hub --initial-twin-tags \'{"kind":"camera"}\'',
    '<%= config.bin %> dps enrollment-group create --gid lab --cp ./lab-ca.pem --edge-enabled true',
  ]
  static flags = { 'enrollment-id': groupIdFlag, ...enrollmentFlags, ...groupAttestationFlags }

  async run(): Promise<void> {
    const f = this.flags
    const x509 = f['certificate-path'] !== undefined || f['root-ca-name'] !== undefined
    const flags = enrollmentFlagValues({ ...f, 'attestation-type': f['attestation-type'] ?? (x509 ? 'x509' : 'symmetrickey') })
    const dps = await this.dps()
    const g = await dps.putEnrollmentGroup(enrollmentBody('enrollmentGroup', flags), { mode: 'create', id: f['enrollment-id'] })
    this.print(g, { columns: GROUP_COLUMNS })
  }
}
