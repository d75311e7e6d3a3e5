import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, keyTypeFlag, moduleFlag } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'
import { hubConnectionStrings } from '../../service/connection-strings.js'

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
    '<%= config.bin %> hub connection-string show --all',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    policy: Flags.string({ aliases: ['pn', 'policy-name'], summary: 'Service policy (default iothubowner when no --device is given, as az).' }),
    gateway: Flags.string({ aliases: ['gateway-host-name'], summary: 'Gateway host the client connects to (e.g. localhost).' }),
    'key-type': keyTypeFlag,
    ...hubTargetFlags,
    eh: Flags.boolean({ aliases: ['default-eventhub'], summary: 'The built-in Event Hubs-compatible endpoint\'s connection string (az --eh).' }),
    'show-all': Flags.boolean({ aliases: ['all'], summary: 'The hub\'s string for every shared access policy (with --eh: those with ServiceConnect), as az --all lists them.' }),
    emulator: Flags.boolean({ summary: 'With --eh: plain AMQP with UseDevelopmentEmulator=true (port 5672 unless --port).', dependsOn: ['eh'] }),
    port: Flags.integer({ summary: 'With --eh: the AMQP port the client dials, when not the default (5671, or 5672 with --emulator).', min: 1, max: 65535, dependsOn: ['eh'] }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const { registry, hub } = await this.hub()
    if (f.device && !f.eh) {
      if (f.policy || f['show-all']) throw new UsageError('--policy and --all are for the hub\'s connection string: pass no --device')
      this.print({ connectionString: await registry.connectionString(f.device, f.module, { gateway: f.gateway, keyType: f['key-type'] }) })
      return
    }
    if (f.device || f.module) throw new UsageError(f.eh ? '--eh prints the hub\'s Event Hubs-compatible endpoint: pass no --device/--module' : '--module needs --device')
    // az iot hub connection-string show: the iothubowner policy (the registry's default) unless --pn says otherwise.
    const opts = { policy: f.policy, keyType: f['key-type'], gateway: f.gateway, port: f.port, emulator: f.emulator, eventHub: f.eh, all: f['show-all'] }
    this.print(hubConnectionStrings(registry, hub.name, opts))
  }
}
