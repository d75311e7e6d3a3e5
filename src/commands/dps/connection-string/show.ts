import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { dpsScopeFlags } from '../../../cli/dps-flags.js'
import { keyTypeFlag } from '../../../cli/flags.js'
import { Dps } from '../../../dps/index.js'

export default class DpsConnectionStringShow extends BaseCommand<typeof DpsConnectionStringShow> {
  static summary = 'The DPS service connection string (az iot dps connection-string show), with the id scope devices register with.'
  static description = 'The provisioning service SDK dials https://<HostName>:443: run the broker with --rest-port 443 (or point HostName elsewhere with --host-name).'
  static examples = ['<%= config.bin %> dps connection-string show', '<%= config.bin %> dps connection-string show --key-type secondary -o tsv']
  static flags = {
    'policy-name': Flags.string({ aliases: ['pn', 'policy'], summary: 'DPS shared access policy (default provisioningserviceowner).' }),
    'key-type': keyTypeFlag,
    'host-name': Flags.string({ summary: 'HostName in the string (default localhost).' }),
    ...dpsScopeFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    const dps = new Dps(await this.hub())
    this.print({ connectionString: dps.connectionString({ policy: f['policy-name'], keyType: f['key-type'], hostName: f['host-name'] }), idScope: dps.idScope })
  }
}
