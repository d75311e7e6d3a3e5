/**
 * A cluster for tests: a private redis-server (appendonly yes, appendfsync always), three homes
 * (as on three machines) pointing at one hub on it (`hub init --store`), devices, an open
 * policy, and `edgemq broker start` nodes on demand.
 */
import assert from 'node:assert/strict'
import { after, before } from 'node:test'

import type { MqttClient } from 'mqtt'

import { openHub } from '../../src/config/home.js'
import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { setEdgeHub } from './bridge.js'
import { type BrokerProc, startBroker } from './broker.js'
import { cliOk as cli, tempHome } from './cli.js'
import { connect, type ConnectOptions, iothubUsername } from './mqtt.js'
import { type RedisProc, startRedis } from './redis.js'

export const HUB = 'clu'
export const HOST = `${HUB}.azure-devices.net`
/** Every identity connects, publishes and subscribes anywhere. */
export const OPEN = [
  { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:publish', 'mqtt:subscribe'], resources: ['#'] }] },
]

export interface StatusJson {
  cluster: { bridgeLeader: string | null; nodes: { node: string; pid: number; leader: boolean; clients: string[] }[] }
}

export interface TestCluster {
  redis: RedisProc
  homes: string[]
  nodes: BrokerProc[]
  clients: MqttClient[]
  sas(deviceId: string): string
  /** Connects a device of the hub to a node (closed by cleanup()). */
  dev(node: BrokerProc, deviceId: string, o?: Partial<ConnectOptions>): Promise<MqttClient>
  /** Starts a node on homes[i] and waits until it joined the cluster. */
  start(i: number, args?: string[]): Promise<BrokerProc>
  cleanup(): Promise<void>
}

/** `into`: arrays to fill instead of new ones (see useCluster). */
export async function makeCluster(devices: string[], into: Partial<Pick<TestCluster, 'homes' | 'nodes' | 'clients'>> = {}): Promise<TestCluster> {
  const redis = await startRedis({ appendOnly: true })
  const homes = into.homes ?? []
  homes.push(tempHome('edgemq-node-a-'), tempHome('edgemq-node-b-'), tempHome('edgemq-node-c-'))
  await cli(homes[0], ['hub', 'init', '--name', HUB, '--store', redis.url])
  // The other "machines" join the same hub: only a pointer file in their homes.
  const joined = await Promise.all(homes.slice(1).map((h) => cli(h, ['hub', 'init', '--name', HUB, '--store', redis.url])))
  for (const j of joined) assert.equal((JSON.parse(j) as { joined: boolean }).joined, true)
  // Devices through the library (the same Store the CLI uses with this home), to save CLI start-ups.
  const keys = new Map<string, string>()
  const ctx = await openHub({ home: homes[1], createDefault: false })
  try {
    assert.equal(ctx.store.kind, 'redis')
    for (const d of devices) keys.set(d, (await ctx.registry.createDevice({ deviceId: d })).primaryKey as string)
  } finally {
    await ctx.close()
  }
  await setEdgeHub(homes[0], { mqttBroker: { authorizations: OPEN } })
  const nodes = into.nodes ?? []
  const clients = into.clients ?? []
  const sas = (deviceId: string) => buildSasToken({ resource: deviceResource(HOST, deviceId), key: keys.get(deviceId) as string, durationSecs: 3600 })
  return {
    redis,
    homes,
    nodes,
    clients,
    sas,
    async dev(node, deviceId, o = {}) {
      const c = await connect({ port: node.ports.mqtt, clientId: deviceId, password: sas(deviceId), username: iothubUsername(deviceId, HOST), ...o })
      clients.push(c)
      return c
    },
    async start(i, args = []) {
      const n = await startBroker(homes[i], ['--no-tls', ...args])
      await n.waitForLog(/joined the cluster/)
      return n
    },
    async cleanup() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)))
      await Promise.all(nodes.map((n) => n.stop()))
      await redis.stop()
    },
  }
}

/**
 * `makeCluster()` for a describe block, nodes 0 and 1 started in before(), everything cleaned up in
 * after(). `homes`, `nodes` and `clients` are arrays filled in place, so they can be destructured
 * at describe time; `redis` and the functions are read inside the tests.
 */
export function useCluster(devices: string[]): Omit<TestCluster, 'cleanup'> {
  const homes: string[] = []
  const nodes: BrokerProc[] = []
  const clients: MqttClient[] = []
  let cl: TestCluster | undefined
  const the = (): TestCluster => {
    if (!cl) throw new Error('useCluster: the cluster starts in before(); use it inside a test')
    return cl
  }
  before(async () => {
    cl = await makeCluster(devices, { homes, nodes, clients })
    nodes.push(await cl.start(0), await cl.start(1))
  })
  after(() => cl?.cleanup())
  return {
    homes,
    nodes,
    clients,
    get redis() {
      return the().redis
    },
    sas: (deviceId) => the().sas(deviceId),
    dev: (...a) => the().dev(...a),
    start: (...a) => the().start(...a),
  }
}
