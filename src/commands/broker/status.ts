import { BaseCommand } from '../../cli/base.js'
import { clusterKeys, listNodes } from '../../cluster/node.js'
import { parseRedisUrl } from '../../cluster/redis.js'
import { BrokerUnreachableError } from '../../errors.js'
import { isRedisStore } from '../../registry/redis-store.js'
import { ControlClient } from '../../service/control-client.js'

export default class BrokerStatus extends BaseCommand<typeof BrokerStatus> {
  static summary = 'Show whether the broker of this home runs: ports, connected clients, policy. Exit 3 when not running.'
  static description = 'For a hub on Redis (a cluster) it lists every live node of the cluster and the clients connected to each, read from Redis.'
  static examples = ['<%= config.bin %> broker status', '<%= config.bin %> broker status -o json | jq .clients', '<%= config.bin %> broker status -o json | jq \'.cluster.nodes[] | {node, clients}\'']

  async run(): Promise<void> {
    const { hub, home, store } = await this.hub()
    if (!isRedisStore(store)) {
      const status = await ControlClient.connect(home, hub).call<Record<string, unknown>>('GET', '/edgemq/status')
      this.print({ running: true, ...status })
      return
    }
    // Cluster: the node registry in Redis is the truth; a local node adds its own details.
    const nodes = await listNodes(store.redis, hub.name)
    const leader = await store.redis.get(clusterKeys(hub.name).leader)
    const local = ControlClient.tryConnect(home, hub)
    const status = local ? await local.call<Record<string, unknown>>('GET', '/edgemq/status').catch(() => undefined) : undefined
    if (nodes.length === 0 && !status) {
      throw new BrokerUnreachableError(`broker not reachable: no node of hub "${hub.name}" is running on ${parseRedisUrl(store.url).display}`)
    }
    this.print({
      running: true,
      ...(status ?? { hub: hub.name }),
      cluster: {
        redis: parseRedisUrl(store.url).display,
        bridgeLeader: leader,
        nodes: nodes.map((n) => ({ node: n.nodeId, pid: n.pid, hostname: n.hostname, host: n.host, ports: n.ports, leader: n.nodeId === leader, startedAt: n.startedAt, heartbeatAt: n.heartbeatAt, clients: n.clients })),
      },
    })
  }
}
