import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubTargetFlags } from '../../cli/flags.js'
import { HubService } from '../../service/hub-service.js'

export default class DeviceList extends BaseCommand<typeof DeviceList> {
  static summary = 'List devices as twins (az: the query SELECT * FROM devices).'
  static description = 'Twins, as az prints them: no keys (`device show` has those). --ee lists IoT Edge devices only; --top caps the count (default 1000, as az).'
  static aliases = ['hub:device-identity:list', 'hub:device-twin:list']
  static examples = ['<%= config.bin %> device list', '<%= config.bin %> device list -o table', '<%= config.bin %> hub device-identity list -n edgemq --ee']
  static flags = {
    ...hubTargetFlags,
    edge: Flags.boolean({ aliases: ['ee', 'edge-enabled'], summary: 'Only IoT Edge devices.' }),
    top: Flags.integer({ summary: 'At most this many (default 1000, as az).', min: 1, default: 1000 }),
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    const twins = await svc.query(`SELECT * FROM devices${this.flags.edge ? ' WHERE capabilities.iotEdge = true' : ''}`, { top: this.flags.top })
    this.print(twins, { columns: ['deviceId', 'status', 'authenticationType', 'capabilities.iotEdge', 'parentScopes'] })
  }
}
