import { BaseCommand } from '../../cli/base.js'
import { hubView } from '../../registry/views.js'

export default class HubShow extends BaseCommand<typeof HubShow> {
  static summary = 'Show the hub in this home: name, host name, edge device, broker settings.'
  static examples = ['<%= config.bin %> hub show', '<%= config.bin %> hub show --home ./hub-a -o table']

  async run(): Promise<void> {
    const { hub, home } = await this.hub()
    this.print(hubView(hub, home))
  }
}
