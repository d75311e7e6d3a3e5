/**
 * Two edgemq homes wired as parent and child (nested edge, PROTOCOL.md §5–§6), built with the
 * real CLI exactly as a user would: `hub init`, `device create … --edge / --pd`, `edgehub set`,
 * `connection-string show`, `hub set-upstream`. Brokers are real `edgemq broker start` processes
 * (test/helpers/broker.ts); MQTT clients are MQTT.js (test/helpers/mqtt.ts).
 *
 *   const pair = await makePair()
 *   const parent = await startBroker(pair.parent.home)
 *   await pair.linkChild(parent)          // hub set-upstream on the child
 *   const child = await startBroker(pair.child.home)
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before } from 'node:test'

import type { MqttClient } from 'mqtt'

import { startBroker, type BrokerProc } from './broker.js'
import { cliOk as cli, jsonOf, runCli, tempHome } from './cli.js'
import { connect, iothubUsername } from './mqtt.js'
import { SEED_FIXTURES } from './paths.js'
import { freePort } from './ports.js'

/** The seed's bridge sample, used in place (never a copy). */
export const SEED_BRIDGE = join(SEED_FIXTURES, 'seed-bridge.json')

/** `edgemq edgehub set -` with a desired object (merged like a desired patch). */
export function setEdgeHub(home: string, desired: Record<string, unknown>): Promise<string> {
  return cli(home, ['edgehub', 'set', '-'], { input: JSON.stringify({ schemaVersion: '1.2', ...desired }) })
}

export interface Hub {
  home: string
  name: string
}

/** Connects a device of `hub` on the broker's plain port with a fresh SAS from `edgemq sas`. */
export async function deviceClient(hub: Hub, broker: BrokerProc, deviceId: string, opts: { clean?: boolean; beforeConnect?: (c: MqttClient) => void } = {}): Promise<MqttClient> {
  const sas = (await cli(hub.home, ['sas', '--device', deviceId, '--raw'])).trim()
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

/** `edgemq broker status` → its bridges[]. */
export async function bridgeStatus(home: string): Promise<BridgeStatusJson[]> {
  const r = await runCli(['broker', 'status'], { home })
  return jsonOf<{ bridges: BridgeStatusJson[] }>(r).bridges
}

/**
 * Parent policy: every identity connects; the child edge device may publish what the child's
 * bridges send up and subscribe to what they bring down; `watcher` sees and feeds all of it.
 */
export const PARENT_TOPICS = ['/remote/messages/#', 'alerts/#', 'sync/#', 'live/#', 'news/#', 'bench/#']
export const CHILD_TOPICS = ['/local/telemetry/#', 'alerts/#', 'sync/#', 'live/#', 'news/#', 'bench/#']

function policy(ids: string[], topics: string[]): unknown[] {
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
  await Promise.all([cli(parent.home, ['hub', 'init', '--name', parent.name]), cli(child.home, ['hub', 'init', '--name', child.name])])
  await cli(parent.home, ['device', 'create', 'child-edge', '--edge'])
  await Promise.all([
    cli(parent.home, ['device', 'create', 'sensor', '--pd', 'child-edge']),
    cli(parent.home, ['device', 'create', 'watcher']),
    cli(child.home, ['device', 'create', 'sensor']),
    cli(child.home, ['device', 'create', 'local']),
  ])
  await Promise.all([
    setEdgeHub(parent.home, { mqttBroker: { authorizations: policy(['child-edge', 'watcher'], PARENT_TOPICS) } }),
    setEdgeHub(child.home, {
      mqttBroker: { authorizations: policy(['local'], CHILD_TOPICS) },
      routes: { r: 'FROM /messages/* INTO $upstream' },
      ...(opts.ttlSecs !== undefined ? { storeAndForwardConfiguration: { timeToLiveSecs: opts.ttlSecs } } : {}),
    }),
  ])
  await cli(child.home, ['edgehub', 'set', SEED_BRIDGE])
  const cs = (await cli(parent.home, ['connection-string', 'show', '--device', 'child-edge', '--gateway', 'localhost', '-o', 'tsv'])).trim()
  return {
    parent,
    child,
    async linkChild(p, o = {}) {
      const conn = o.key ? cs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${o.key}`) : cs
      await cli(child.home, ['hub', 'set-upstream', '--connection-string', conn, '--port', String(o.port ?? p.ports.mqtts), '--ca', p.caFile])
    },
  }
}

/** Publishes and resolves on PUBACK (QoS 1). */
export function publishAck(c: MqttClient, topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
  return new Promise((res, rej) => c.publish(topic, payload, { qos }, (err) => (err ? rej(err) : res())))
}

/**
 * The `$edgeHub` reported `bridges` (via `twin show`), polled until `ok` holds: the broker writes
 * them at most once a second after a change, and there is no event to wait on from outside.
 */
export async function reportedBridges(home: string, ok: (b: BridgeStatusJson[]) => boolean, timeoutMs = 10_000): Promise<BridgeStatusJson[]> {
  const deadline = Date.now() + timeoutMs
  let last: BridgeStatusJson[] = []
  for (;;) {
    const twin = JSON.parse(await cli(home, ['twin', 'show', '--device', 'edge-gateway', '--module', '$edgeHub'])) as { properties: { reported: { bridges?: BridgeStatusJson[] } } }
    last = twin.properties.reported.bridges ?? []
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
