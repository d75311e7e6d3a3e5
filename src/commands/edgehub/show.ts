import { BaseCommand } from '../../cli/base.js'
import { showEdgeHub } from '../../service/edgehub.js'

export default class EdgehubShow extends BaseCommand<typeof EdgehubShow> {
  static summary = 'Show the $edgeHub twin: desired (policy, bridges, routes) and reported (lastDesiredStatus).'
  static examples = ['<%= config.bin %> edgehub show', '<%= config.bin %> edgehub show -o json | jq .properties.reported.lastDesiredStatus']

  async run(): Promise<void> {
    this.print(await showEdgeHub(await this.hub()))
  }
}
