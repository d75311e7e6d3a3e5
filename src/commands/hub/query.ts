import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubTargetFlags } from '../../cli/flags.js'
import { HubService } from '../../service/hub-service.js'

export default class HubQuery extends BaseCommand<typeof HubQuery> {
  static summary = 'Query device or module twins with the IoT Hub query language (az iot hub query).'
  static description =
    'SELECT * | <paths> | COUNT() AS n FROM devices | devices.modules [WHERE …] [GROUP BY …]. WHERE takes =, !=, <>, <, >, <=, >=, AND, OR, NOT, IN […], NIN […], ' +
    'IS_DEFINED(), IS_NULL() and the other IS_* tests, STARTSWITH(), ENDSWITH(). Prints a JSON array. A query that does not parse exits 2 with the position.'
  static examples = [
    '<%= config.bin %> hub query -q "SELECT * FROM devices WHERE tags.site = \'lab\'"',
    '<%= config.bin %> hub query -q "SELECT deviceId, properties.reported.fw FROM devices WHERE capabilities.iotEdge = false" --top 10',
    '<%= config.bin %> hub query -q "SELECT COUNT() AS n FROM devices.modules GROUP BY moduleId" -o table',
  ]
  static flags = {
    'query-command': Flags.string({ char: 'q', summary: 'The query (az: -q/--query-command).', required: true }),
    top: Flags.integer({ summary: 'At most this many results (default: all).', min: 1 }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    await this.checkHubName(this.flags['hub-name'])
    const svc = new HubService(await this.hub())
    this.print(await svc.query(this.flags['query-command'], { top: this.flags.top }))
  }
}
