/**
 * Two edgemq homes wired as parent and child (nested edge, PROTOCOL.md §5–§6). The homes are set
 * up through the library the commands are thin wrappers of (`initHub`, the Registry,
 * `setEdgeHubDesired`, `installUpstreamCa` + `setUpstream`): the same files a user's `hub init`,
 * `device create … --edge / --pd`, `edgehub set` and `hub set-upstream` write, without a CLI
 * start-up (~0.4 s of CPU) each; the CLI's own tests cover those commands. Brokers are real
 * `edgemq broker start` processes (test/helpers/broker.ts); MQTT clients are MQTT.js.
 *
 *   const pair = await makePair()
 *   const parent = await startBroker(pair.parent.home)
 *   await pair.linkChild(parent)          // what `hub set-upstream` does, on the child
 *   const child = await startBroker(pair.child.home)
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before } from 'node:test'

import type { MqttClient } from 'mqtt'

import { installUpstreamCa, initHub, openHub, type HubContext } from '../../src/config/home.js'
import { parseUpstreamConnectionString } from '../../src/bridge/upstream.js'
import { ControlClient } from '../../src/service/control-client.js'
import { parseEdgeHubFile, setEdgeHubDesired } from '../../src/service/edgehub.js'
import type { JsonValue } from '../../src/policy/index.js'
import { startBroker, type BrokerProc } from './broker.js'
import { tempHome } from './cli.js'
import { connect, iothubUsername } from './mqtt.js'
import { SEED_FIXTURES } from './paths.js'
import { freePort } from './ports.js'

/** The seed's bridge sample, used in place (never a copy). */
export const SEED_BRIDGE = join(SEED_FIXTURES, 'seed-bridge.json')

/** Opens the hub in `home` (as every command does), runs `fn`, closes it. */
export async function withHome<T>(home: string, fn: (ctx: HubContext) => Promise<T>): Promise<T> {
  const ctx = await openHub({ home, createDefault: false })
  try {
    return await fn(ctx)
  } finally {
    await ctx.close()
  }
}

/** What `edgemq edgehub set -` does with a desired object (merged like a desired patch). */
export async function setEdgeHub(home: string, desired: Record<string, unknown>): Promise<void> {
  await withHome(home, (ctx) => setEdgeHubDesired(ctx, { schemaVersion: '1.2', ...desired }))
}

export interface Hub {
  home: string
  name: string
}

/** Connects a device of `hub` on the broker's plain port with a fresh SAS (what `edgemq sas` prints). */
export async function deviceClient(hub: Hub, broker: BrokerProc, deviceId: string, opts: { clean?: boolean; beforeConnect?: (c: MqttClient) => void } = {}): Promise<MqttClient> {
  const sas = await withHome(hub.home, (ctx) => ctx.registry.sasToken(deviceId, undefined))
  return connect({ port: broker.ports.mqtt, clientId: deviceId, password: sas, username: iothubUsername(deviceId, `${hub.name}.azure-devices.net`), ...opts })
}

export interface BridgeStatusJson {
  endpoint: string
  state: string
  parent?: string
  queueLength: number
  expired: number
  forwarded: number
  received: number
  /** In the dead-letter store (refused by the parent). */
  deadLettered: number
  droppedNoRule: number
  lastDeadLetter?: { topic: string; at: string; attempts: number; reason: string }
  lastError?: string
}

/** The bridges[] of `edgemq broker status`, from the running broker's control API as that command reads it. */
export async function bridgeStatus(home: string): Promise<BridgeStatusJson[]> {
  const status = await withHome(home, (ctx) => ControlClient.connect(home, ctx.hub).call<{ bridges: BridgeStatusJson[] }>('GET', '/edgemq/status'))
  return status.bridges
}

/** Polls the first bridge of `broker status` until `ok` holds (the broker's counters have no event a test can wait on). */
export async function statusUntil(home: string, ok: (b: BridgeStatusJson) => boolean, timeoutMs = 20_000): Promise<BridgeStatusJson> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const [b] = await bridgeStatus(home)
    if (ok(b)) return b
    if (Date.now() > deadline) assert.fail(`bridge status never matched within ${timeoutMs} ms: ${JSON.stringify(b)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Parent policy: every identity connects; the child edge device may publish what the child's
 * bridges send up and subscribe to what they bring down; `watcher` sees and feeds all of it.
 */
export const PARENT_TOPICS = ['/remote/messages/#', 'alerts/#', 'sync/#', 'live/#', 'news/#', 'bench/#']
export const CHILD_TOPICS = ['/local/telemetry/#', 'alerts/#', 'sync/#', 'live/#', 'news/#', 'bench/#']

function policy(ids: string[], topics: string[]): JsonValue[] {
  return [
    { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] },
    { identities: ids, allow: [{ operations: ['mqtt:publish', 'mqtt:subscribe'], resources: topics }] },
  ]
}

export interface Pair {
  parent: Hub
  child: Hub
  /** `hub set-upstream` on the child, naming `parent`'s mqtts port and CA. */
  linkChild(parent: { ports: { mqtts: number }; caFile: string }, opts?: { key?: string; port?: number }): Promise<void>
}

/**
 * Parent `parenthub`: child-edge (--edge), sensor (--pd child-edge), watcher. Child `childhub`:
 * sensor, local; routes `FROM /messages/* INTO $upstream`; the seed's bridge sample verbatim.
 */
export async function makePair(opts: { ttlSecs?: number } = {}): Promise<Pair> {
  const parent: Hub = { home: tempHome('edgemq-parent-'), name: 'parenthub' }
  const child: Hub = { home: tempHome('edgemq-child-'), name: 'childhub' }
  const [parentCtx, childCtx] = await Promise.all([initHub(parent.home, { name: parent.name }), initHub(child.home, { name: child.name })])
  try {
    await parentCtx.registry.createDevice({ deviceId: 'child-edge', edge: true })
    await parentCtx.registry.createDevice({ deviceId: 'sensor', parentId: 'child-edge' })
    await parentCtx.registry.createDevice({ deviceId: 'watcher' })
    await childCtx.registry.createDevice({ deviceId: 'sensor' })
    await childCtx.registry.createDevice({ deviceId: 'local' })
    await setEdgeHubDesired(parentCtx, { schemaVersion: '1.2', mqttBroker: { authorizations: policy(['child-edge', 'watcher'], PARENT_TOPICS) } })
    await setEdgeHubDesired(childCtx, {
      schemaVersion: '1.2',
      mqttBroker: { authorizations: policy(['local'], CHILD_TOPICS) },
      routes: { r: 'FROM /messages/* INTO $upstream' },
      ...(opts.ttlSecs !== undefined ? { storeAndForwardConfiguration: { timeToLiveSecs: opts.ttlSecs } } : {}),
    })
    await setEdgeHubDesired(childCtx, parseEdgeHubFile(SEED_BRIDGE))
  } finally {
    await Promise.all([parentCtx.close(), childCtx.close()])
  }
  const cs = await withHome(parent.home, (ctx) => ctx.registry.connectionString('child-edge', undefined, { gateway: 'localhost' }))
  return {
    parent,
    child,
    async linkChild(p, o = {}) {
      const conn = o.key ? cs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${o.key}`) : cs
      await withHome(child.home, (ctx) =>
        ctx.registry.setUpstream(parseUpstreamConnectionString(conn, { port: o.port ?? p.ports.mqtts, caFile: installUpstreamCa(ctx.paths, p.caFile) })),
      )
    },
  }
}

/** Publishes and resolves on PUBACK (QoS 1). */
export function publishAck(c: MqttClient, topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
  return new Promise((res, rej) => c.publish(topic, payload, { qos }, (err) => (err ? rej(err) : res())))
}

/**
 * The `$edgeHub` reported `bridges` (what `twin show` prints), polled until `ok` holds: the broker writes
 * them at most once a second after a change, and there is no event to wait on from outside.
 */
export async function reportedBridges(home: string, ok: (b: BridgeStatusJson[]) => boolean, timeoutMs = 10_000): Promise<BridgeStatusJson[]> {
  const deadline = Date.now() + timeoutMs
  let last: BridgeStatusJson[] = []
  for (;;) {
    const twin = await withHome(home, (ctx) => ctx.store.getTwin({ deviceId: ctx.hub.edgeDeviceId, moduleId: '$edgeHub' }))
    last = (twin?.reported as { bridges?: BridgeStatusJson[] }).bridges ?? []
    if (ok(last)) return last
    if (Date.now() > deadline) assert.fail(`$edgeHub reported bridges never matched within ${timeoutMs} ms: ${JSON.stringify(last)}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/**
 * A parent broker on a fixed TLS port (so it can be killed and restarted where the child looks for
 * it) and a child bridged to it, both running, the bridge connected: the setup of the outage tests.
 */
export async function startLinkedPair(opts: { ttlSecs?: number } = {}): Promise<{ pair: Pair; tlsPort: number; parent: BrokerProc; child: BrokerProc }> {
  const pair = await makePair(opts)
  const tlsPort = await freePort()
  const parent = await startBroker(pair.parent.home, ['--tls-port', String(tlsPort)])
  await pair.linkChild(parent)
  const child = await startBroker(pair.child.home)
  await child.waitForLog(/bridge connected to \$upstream/)
  return { pair, tlsPort, parent, child }
}

export interface LinkedPairFixture {
  pair: Pair
  tlsPort: number
  parent: BrokerProc
  child: BrokerProc
  /** MQTT clients the tests open; ended (forcibly) before the brokers stop. */
  clients: MqttClient[]
}

/**
 * `startLinkedPair()` for a describe block: started in before(), its clients and both brokers
 * stopped in after(). The fields are filled once before() ran, so read them inside the tests.
 */
export function useLinkedPair(opts: { ttlSecs?: number } = {}): LinkedPairFixture {
  const f = { clients: [] as MqttClient[] } as LinkedPairFixture
  before(async () => {
    Object.assign(f, await startLinkedPair(opts))
  })
  after(async () => {
    await Promise.all(f.clients.map((c) => c.endAsync(true)))
    await Promise.all([f.child?.stop(), f.parent?.stop()])
  })
  return f
}
