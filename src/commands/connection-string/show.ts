import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubNameFlag, keyTypeFlag, moduleFlag } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'

export default class ConnectionStringShow extends BaseCommand<typeof ConnectionStringShow> {
  static summary = 'Show a device, module or service connection string.'
  static description = 'With --gateway the string carries GatewayHostName (devices) or points HostName at the local REST API (--policy).'
  static aliases = ['hub:device-identity:connection-string:show', 'hub:module-identity:connection-string:show', 'hub:connection-string:show']
  static examples = [
    '<%= config.bin %> connection-string show --device sub_client --gateway localhost',
    '<%= config.bin %> connection-string show --device edge-gateway --module filter -o tsv',
    '<%= config.bin %> connection-string show --policy iothubowner --gateway localhost',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    policy: Flags.string({ aliases: ['pn', 'policy-name'], summary: 'Service policy (e.g. iothubowner) instead of a device.' }),
    gateway: Flags.string({ aliases: ['gateway-host-name'], summary: 'Gateway host the client connects to (e.g. localhost).' }),
    'key-type': keyTypeFlag,
    'hub-name': hubNameFlag,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const { registry } = await this.hub()
    let cs: string
    if (f.policy) {
      if (f.device) throw new UsageError('pass either --device or --policy, not both')
      cs = registry.serviceConnectionString({ policy: f.policy, gateway: f.gateway, keyType: f['key-type'] })
    } else {
      if (!f.device) throw new UsageError('missing --device (or --policy for a service connection string)')
      cs = await registry.connectionString(f.device, f.module, { gateway: f.gateway, keyType: f['key-type'] })
    }
    this.print({ connectionString: cs })
  }
}
