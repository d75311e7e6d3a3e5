/**
 * Issue 4 "Must show", durability (PROTOCOL.md §7): a persistent QoS1 subscriber (clean=false)
 * that is offline while 1,000 messages are published gets all 1,000 after the broker is killed
 * with SIGKILL and restarted on the same home; a retained message survives too. The same after a
 * graceful `edgemq broker stop`.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import type { MqttClient } from 'mqtt'

import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { startBroker, type BrokerProc } from '../helpers/broker.js'
import { jsonOf, runCli, tempHome } from '../helpers/cli.js'
import { collect, connect, type Received } from '../helpers/mqtt.js'
import type { deviceView } from '../../src/registry/views.js'

const N = 1000

type DeviceJson = ReturnType<typeof deviceView>

/** The seed's shape: everyone connects; `sub_client` may subscribe and `pub_client` publish under dur/. */
const POLICY = {
  $edgeHub: {
    'properties.desired': {
      schemaVersion: '1.2',
      mqttBroker: {
        authorizations: [
          { identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }, { operations: ['mqtt:subscribe'], resources: ['dur/retained'] }] },
          { identities: ['sub_client'], allow: [{ operations: ['mqtt:subscribe'], resources: ['dur/#'] }] },
          { identities: ['pub_client'], allow: [{ operations: ['mqtt:publish'], resources: ['dur/#'] }] },
        ],
      },
    },
  },
}

describe('broker: durability across kill -9 and broker stop', () => {
  const home = tempHome()
  const brokers: BrokerProc[] = []
  const keys = new Map<string, string>()
  let broker: BrokerProc

  const password = (d: string) => buildSasToken({ resource: deviceResource('edgemq', d), key: keys.get(d) as string, durationSecs: 3600 })
  const connectAs = (d: string, opts: { clean?: boolean; beforeConnect?: (c: MqttClient) => void } = {}) =>
    connect({ port: broker.ports.mqtt, clientId: d, password: password(d), ...opts })

  async function start(): Promise<void> {
    broker = await startBroker(home)
    brokers.push(broker)
  }

  before(async () => {
    for (const d of ['sub_client', 'pub_client', 'checker']) {
      const r = await runCli(['device', 'create', d], { home })
      assert.equal(r.code, 0, r.stderr)
      keys.set(d, jsonOf<DeviceJson>(r).authentication.symmetricKey.primaryKey as string)
    }
    const file = join(home, 'policy.json')
    writeFileSync(file, JSON.stringify(POLICY))
    const p = await runCli(['edgehub', 'set', file], { home })
    assert.equal(p.code, 0, p.stderr)
    await start()
  })

  after(async () => {
    for (const b of brokers) await b.stop()
  })

  /** The persistent subscriber goes offline, `prefix-0…N-1` are published (every PUBACK awaited), plus a retained one. */
  async function publishWhileOffline(prefix: string): Promise<void> {
    const sub = await connectAs('sub_client', { clean: false })
    const granted = await sub.subscribeAsync('dur/q', { qos: 1 })
    assert.equal(granted[0].qos, 1)
    await sub.endAsync()
    const pub = await connectAs('pub_client')
    // A bounded window (100 in flight) keeps the load realistic; every PUBACK is awaited.
    for (let i = 0; i < N; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, N - i) }, (_, j) => pub.publishAsync('dur/q', `${prefix}-${i + j}`, { qos: 1 })))
    }
    await pub.publishAsync('dur/retained', `${prefix}-retained`, { qos: 1, retain: true })
    await pub.endAsync()
  }

  /** The subscriber reconnects with clean=false and must get all N, in order; a new client gets the retained one. */
  async function expectDelivered(prefix: string): Promise<void> {
    let got: Promise<Received[]> | undefined
    const sub = await connectAs('sub_client', {
      clean: false,
      // Queued messages can arrive in the same read as the CONNACK: listen before connecting.
      beforeConnect: (c) => (got = collect(c, N, { timeoutMs: 30_000, filter: (m) => m.topic === 'dur/q' })),
    })
    try {
      const msgs = await (got as Promise<Received[]>)
      assert.deepEqual(
        msgs.map((m) => m.payload.toString()),
        Array.from({ length: N }, (_, i) => `${prefix}-${i}`),
      )
      assert.ok(msgs.every((m) => m.qos === 1))
    } finally {
      await sub.endAsync()
    }
    const checker = await connectAs('checker')
    try {
      const retained = collect(checker, 1)
      await checker.subscribeAsync('dur/retained', { qos: 1 })
      const [m] = await retained
      assert.equal(m.payload.toString(), `${prefix}-retained`)
      assert.equal(m.retain, true)
    } finally {
      await checker.endAsync()
    }
  }

  it(`${N} queued QoS1 messages and a retained message survive SIGKILL of the broker`, async () => {
    await publishWhileOffline('kill')
    await broker.kill()
    assert.equal(broker.proc.signalCode, 'SIGKILL')
    // Same home, new free ports: `start()` reads them from the new process's ready line.
    await start()
    await expectDelivered('kill')
  })

  it(`${N} queued QoS1 messages and a retained message survive a graceful \`edgemq broker stop\``, async () => {
    await publishWhileOffline('stop')
    const exited = new Promise<number | null>((res) => broker.proc.once('exit', (code) => res(code)))
    const r = await runCli(['broker', 'stop'], { home })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await exited, 0)
    await start()
    await expectDelivered('stop')
  })
})
