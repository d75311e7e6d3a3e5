import { BaseCommand } from '../../cli/base.js'
import { readStorePointer } from '../../config/home.js'
import { ControlClient } from '../../service/control-client.js'

export default class BrokerStatus extends BaseCommand<typeof BrokerStatus> {
  static summary = 'Show whether the broker of this home runs: ports, connected clients, policy. Exit 3 when not running.'
  static description = 'For a hub on Redis (a cluster) it lists every live node of the cluster and the clients connected to each, read from Redis.'
  static examples = ['<%= config.bin %> broker status', '<%= config.bin %> broker status -o json | jq .clients', '<%= config.bin %> broker status -o json | jq \'.cluster.nodes[] | {node, clients}\'']

  async run(): Promise<void> {
    const ctx = await this.hub()
    const { hub, home } = ctx
    if (!readStorePointer(home)) {
      const status = await ControlClient.connect(home, hub).call<Record<string, unknown>>('GET', '/edgemq/status')
      this.print({ running: true, ...status })
      return
    }
    // Cluster: the node registry in Redis is the truth; loaded only here (it pulls in the cluster node).
    const { clusterStatus } = await import('../../service/cluster-status.js')
    this.print(await clusterStatus(ctx))
  }
}
