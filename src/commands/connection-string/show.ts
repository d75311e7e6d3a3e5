import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, keyTypeFlag, moduleFlag } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'
import { eventHubConnectionString } from '../../eventhubs/connection-string.js'

export default class ConnectionStringShow extends BaseCommand<typeof ConnectionStringShow> {
  static summary = 'Show a device, module or service connection string (no --device: the iothubowner policy, as az).'
  static description =
    'With --gateway the string carries GatewayHostName (devices) or points HostName at the local REST API (--policy). --eh prints the built-in Event Hubs-compatible endpoint\'s string (Endpoint=sb://…;EntityPath=<hub>) for @azure/event-hubs: TLS on 5671 (trust the hub CA), or with --emulator plain AMQP (UseDevelopmentEmulator=true, 5672).'
  static aliases = ['hub:device-identity:connection-string:show', 'hub:module-identity:connection-string:show', 'hub:connection-string:show']
  static examples = [
    '<%= config.bin %> connection-string show --device sub_client --gateway localhost',
    '<%= config.bin %> connection-string show --device edge-gateway --module filter -o tsv',
    '<%= config.bin %> connection-string show --policy iothubowner --gateway localhost',
    '<%= config.bin %> hub connection-string show -n edgemq',
    '<%= config.bin %> connection-string show --eh --emulator -o tsv',
    '<%= config.bin %> hub connection-string show --eh --policy service --port 5671',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    policy: Flags.string({ aliases: ['pn', 'policy-name'], summary: 'Service policy (default iothubowner when no --device is given, as az).' }),
    gateway: Flags.string({ aliases: ['gateway-host-name'], summary: 'Gateway host the client connects to (e.g. localhost).' }),
    'key-type': keyTypeFlag,
    ...hubTargetFlags,
    eh: Flags.boolean({ summary: 'The built-in Event Hubs-compatible endpoint\'s connection string (az --eh).' }),
    emulator: Flags.boolean({ summary: 'With --eh: plain AMQP with UseDevelopmentEmulator=true (port 5672 unless --port).', dependsOn: ['eh'] }),
    port: Flags.integer({ summary: 'With --eh: the AMQP port the client dials, when not the default (5671, or 5672 with --emulator).', min: 1, max: 65535, dependsOn: ['eh'] }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const { registry, hub } = await this.hub()
    let cs: string
    if (f.eh) {
      if (f.device || f.module) throw new UsageError('--eh prints the hub\'s Event Hubs-compatible endpoint: pass no --device/--module')
      cs = eventHubConnectionString(registry, hub.name, { policy: f.policy, keyType: f['key-type'], host: f.gateway, port: f.port, emulator: f.emulator })
    } else if (f.device) {
      if (f.policy) throw new UsageError('pass either --device or --policy, not both')
      cs = await registry.connectionString(f.device, f.module, { gateway: f.gateway, keyType: f['key-type'] })
    } else {
      if (f.module) throw new UsageError('--module needs --device')
      // az iot hub connection-string show: the iothubowner policy (the registry's default) unless --pn says otherwise.
      cs = registry.serviceConnectionString({ policy: f.policy, gateway: f.gateway, keyType: f['key-type'] })
    }
    this.print({ connectionString: cs })
  }
}
