import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { DEFAULT_EDGE_DEVICE, DEFAULT_HUB_NAME, initHub } from '../../config/home.js'
import { hubView } from '../../registry/views.js'

export default class HubInit extends BaseCommand<typeof HubInit> {
  static summary = 'Create the hub in this home: name, edge device, service policies.'
  static description = 'Runs a short wizard on a terminal when no flags are given. Any other command creates the default hub (edgemq / edge-gateway) on first use.'
  static examples = [
    '<%= config.bin %> hub init --name myhub --edge-device gw1',
    '<%= config.bin %> hub init --home ./hub-a --name hub-a',
    '<%= config.bin %> hub init --force',
    '<%= config.bin %> hub init --name plant1 --store redis://localhost:6379/0',
  ]
  static flags = {
    name: Flags.string({ summary: 'Hub name (usernames become <name>.azure-devices.net/…).' }),
    'edge-device': Flags.string({ summary: 'Id of the hub\'s IoT Edge device (its $edgeHub twin holds the policy).' }),
    force: Flags.boolean({ summary: 'Replace an existing hub (deletes its devices).' }),
    store: Flags.string({
      summary: 'Keep the hub in Redis (redis://[:password@]host:port[/db]) so several brokers share it; the home keeps only a pointer. An existing hub of that name is joined.',
    }),
  }

  async run(): Promise<void> {
    let { name, 'edge-device': edgeDevice } = this.flags
    if (!name && !edgeDevice && !this.flags.store && process.stdin.isTTY && process.stdout.isTTY && !process.env.CI) {
      const { default: inquirer } = await import('inquirer')
      const answers = await inquirer.prompt<{ name: string; edge: string }>([
        { type: 'input', name: 'name', message: 'Hub name', default: DEFAULT_HUB_NAME },
        { type: 'input', name: 'edge', message: 'Edge device id', default: DEFAULT_EDGE_DEVICE },
      ])
      name = answers.name
      edgeDevice = answers.edge
    }
    const ctx = await initHub(this.home, { name, edgeDeviceId: edgeDevice, force: this.flags.force, storeUrl: this.flags.store })
    try {
      const joined = 'joined' in ctx && ctx.joined === true
      this.print({ ...hubView(ctx.hub, ctx.home), ...(this.flags.store ? { store: this.flags.store.replace(/\/\/[^@/]*@/, '//'), joined } : {}) })
      this.logToStderr(`next: edgemq device create sub_client --pd ${ctx.hub.edgeDeviceId} --home ${ctx.home}`)
    } finally {
      await ctx.close()
    }
  }
}
