/**
 * `broker status` for a hub on Redis (a cluster): every live node from the node registry in Redis,
 * the bridge leader, and the local node's own status when one runs here. Commands load this module
 * lazily: it pulls in the cluster node (LevelDB, aedes persistence), which a single broker's
 * `broker status` does not need.
 */
import { clusterKeys, listNodes } from '../cluster/node.js'
import { parseRedisUrl } from '../cluster/redis.js'
import type { HubContext } from '../config/home.js'
import { BrokerUnreachableError, UsageError } from '../errors.js'
import { isRedisStore } from '../registry/redis-store.js'
import { ControlClient } from './control-client.js'

export async function clusterStatus(ctx: HubContext): Promise<Record<string, unknown>> {
  const { hub, home, store } = ctx
  if (!isRedisStore(store)) throw new UsageError(`${home} is not a hub on Redis`)
  const nodes = await listNodes(store.redis, hub.name)
  const leader = await store.redis.get(clusterKeys(hub.name).leader)
  const local = ControlClient.tryConnect(home, hub)
  const status = local ? await local.call<Record<string, unknown>>('GET', '/edgemq/status').catch(() => undefined) : undefined
  if (nodes.length === 0 && !status) {
    throw new BrokerUnreachableError(`broker not reachable: no node of hub "${hub.name}" is running on ${parseRedisUrl(store.url).display}`)
  }
  return {
    running: true,
    ...(status ?? { hub: hub.name }),
    cluster: {
      redis: parseRedisUrl(store.url).display,
      bridgeLeader: leader,
      nodes: nodes.map((n) => ({ node: n.nodeId, pid: n.pid, hostname: n.hostname, host: n.host, ports: n.ports, leader: n.nodeId === leader, startedAt: n.startedAt, heartbeatAt: n.heartbeatAt, clients: n.clients })),
    },
  }
}
