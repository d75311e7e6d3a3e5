import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubNameFlag } from '../../cli/flags.js'
import { deviceView } from '../../registry/views.js'

export default class DeviceList extends BaseCommand<typeof DeviceList> {
  static summary = 'List device identities.'
  static aliases = ['hub:device-identity:list']
  static examples = ['<%= config.bin %> device list', '<%= config.bin %> device list -o table', '<%= config.bin %> hub device-identity list -n edgemq --ee']
  static flags = {
    'hub-name': hubNameFlag,
    edge: Flags.boolean({ aliases: ['ee', 'edge-enabled'], summary: 'Only IoT Edge devices.' }),
    top: Flags.integer({ summary: 'At most this many.', min: 1 }),
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const { registry } = await this.hub()
    const all = await registry.listDevices()
    let devices = all
    if (this.flags.edge) devices = devices.filter((d) => d.edge)
    if (this.flags.top) devices = devices.slice(0, this.flags.top)
    const byId = new Map(all.map((d) => [d.deviceId, d]))
    this.print(
      devices.map((d) => deviceView(d, d.parentId ? byId.get(d.parentId) : undefined)),
      { columns: ['deviceId', 'status', 'authentication.type', 'capabilities.iotEdge', 'parentScopes'] },
    )
  }
}
