import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { dpsScopeFlags } from '../../../cli/dps-flags.js'
import { keyTypeFlag } from '../../../cli/flags.js'

export default class DpsConnectionStringShow extends BaseCommand<typeof DpsConnectionStringShow> {
  static summary = 'The DPS service connection string (az iot dps connection-string show), with the id scope devices register with.'
  static description = 'The provisioning service SDK dials https://<HostName>:443: run the broker with --rest-port 443 (or point HostName elsewhere with --host-name).'
  static examples = ['<%= config.bin %> dps connection-string show', '<%= config.bin %> dps connection-string show --key-type secondary -o tsv']
  static flags = {
    'policy-name': Flags.string({ aliases: ['pn', 'policy'], summary: 'DPS shared access policy (default provisioningserviceowner).' }),
    'key-type': keyTypeFlag,
    'host-name': Flags.string({ summary: 'HostName in the string (default localhost).' }),
    'show-all': Flags.boolean({ aliases: ['all'], summary: 'One string per DPS shared access policy (az --all).' }),
    ...dpsScopeFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    const dps = await this.dps()
    const opts = { keyType: f['key-type'], hostName: f['host-name'] }
    this.print({ connectionString: f['show-all'] ? dps.connectionStrings(opts) : dps.connectionString({ ...opts, policy: f['policy-name'] }), idScope: dps.idScope })
  }
}
