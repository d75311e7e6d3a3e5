/**
 * Issue 7 "Must show", bad config (PROTOCOL.md §6): `edgehub set` refuses an unknown direction and
 * an endpoint other than `$upstream` (exit 2, every error with its JSON path, nothing applied);
 * an unreachable parent and a parent refusing the child's credentials give a clear log line and
 * `lastError`/state in `broker status` and the `$edgeHub` reported properties, while the local
 * broker keeps serving local pub/sub. Upstream changes (`hub set-upstream`) apply live.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import type { MqttClient } from 'mqtt'

import { bridgeStatus, deviceClient, makePair, type Pair, publishAck, reportedBridges, statusUntil } from '../helpers/bridge.js'
import { type BrokerProc, startBroker } from '../helpers/broker.js'
import { cliOk as cli, runCli } from '../helpers/cli.js'
import { collect, subscribeOk } from '../helpers/mqtt.js'
import { freePort } from '../helpers/ports.js'

describe('bridge: bad configuration', () => {
  let pair: Pair
  let parent: BrokerProc
  let child: BrokerProc
  let local: MqttClient

  before(async () => {
    pair = await makePair()
    parent = await startBroker(pair.parent.home)
  })

  after(async () => {
    await local?.endAsync(true)
    await Promise.all([child?.stop(), parent?.stop()])
  })

  /** Local pub/sub on the child still works. */
  async function localStillServes(tag: string): Promise<void> {
    const got = collect(local, 1, { filter: (m) => m.topic === `alerts/local-${tag}` })
    await publishAck(local, `alerts/local-${tag}`, tag)
    assert.equal((await got)[0].payload.toString(), tag)
  }

  for (const [what, setting, path, re] of [
    ['an unknown direction', { direction: 'sideways', topic: 'a/#' }, 'mqttBroker.bridges[0].settings[0].direction', /in.*out.*both/],
    ['a direction in the wrong case', { direction: 'OUT', topic: 'a/#' }, 'mqttBroker.bridges[0].settings[0].direction', /in.*out.*both/],
  ] as const) {
    it(`edgehub set refuses ${what} (exit 2, with the path)`, async () => {
      const doc = { schemaVersion: '1.2', mqttBroker: { bridges: [{ endpoint: '$upstream', settings: [setting] }] } }
      const r = await runCli(['edgehub', 'set', '-'], { home: pair.child.home, input: JSON.stringify(doc) })
      assert.equal(r.code, 2, r.stderr)
      assert.ok(r.stderr.includes(path), r.stderr)
      assert.match(r.stderr, re)
      assert.equal(r.stdout, '')
    })
  }

  it('edgehub set refuses a bridge to an endpoint other than $upstream (exit 2, every path)', async () => {
    const doc = {
      schemaVersion: '1.2',
      mqttBroker: {
        bridges: [
          { endpoint: '$upstream', settings: [{ direction: 'in', topic: 'alerts/#' }] },
          { endpoint: 'mqtt://otherbroker:1883', settings: [{ direction: 'out', topic: 'x/#' }] },
        ],
      },
    }
    const r = await runCli(['edgehub', 'set', '-'], { home: pair.child.home, input: JSON.stringify(doc) })
    assert.equal(r.code, 2, r.stderr)
    assert.ok(r.stderr.includes('mqttBroker.bridges[1].endpoint'), r.stderr)
    assert.match(r.stderr, /\$upstream/)
    // -o json: the same errors, machine-readable.
    const j = await runCli(['edgehub', 'set', '-', '-o', 'json'], { home: pair.child.home, input: JSON.stringify(doc) })
    assert.equal(j.code, 2)
    assert.ok((j.stdout + j.stderr).includes('mqttBroker.bridges[1].endpoint'), j.stdout + j.stderr)
    // Nothing was applied: the seed sample is still the bridge.
    const shown = JSON.parse(await cli(pair.child.home, ['edgehub', 'show'])) as unknown
    const text = JSON.stringify(shown)
    assert.match(text, /\/remote\/messages/)
    assert.doesNotMatch(text, /otherbroker|sideways/)
  })

  it('a parent that refuses the credentials (wrong key): clear log line, lastError, local pub/sub keeps working', async () => {
    await pair.linkChild(parent, { key: Buffer.alloc(32, 7).toString('base64') })
    child = await startBroker(pair.child.home)
    const line = await child.waitForLog(/bridge refused by \$upstream/, { timeoutMs: 20_000 })
    assert.match(line, /Bad username or password/)
    assert.match(line, new RegExp(`"parent":"localhost:${parent.ports.mqtts}"`))
    assert.match(line, /"deviceId":"child-edge"/)
    assert.match(line, /hub set-upstream/, 'the log line says what to check')
    // The parent logged why.
    await parent.waitForLog(/"client":"child-edge".*connection refused/)
    const [st] = await bridgeStatus(pair.child.home)
    assert.notEqual(st.state, 'connected')
    assert.match(st.lastError ?? '', /not authorized|bad user ?name or password/i)
    const reported = await reportedBridges(pair.child.home, (b) => /not authorized|bad user ?name or password/i.test(b[0]?.lastError ?? ''))
    assert.notEqual(reported[0].state, 'connected')

    local = await deviceClient(pair.child, child, 'local')
    await subscribeOk(local, ['alerts/#'], 1)
    await localStillServes('auth')
    // Out-going bridge messages are still accepted (queued) meanwhile.
    await publishAck(local, '/local/telemetry/while-refused', 'q')
    const [st2] = await bridgeStatus(pair.child.home)
    assert.equal(st2.queueLength, 1)
  })

  it('an unreachable parent (nothing listening), set live: clear log line, lastError, local pub/sub keeps working', async () => {
    const dead = await freePort()
    const line = child.waitForLog(new RegExp(`"parent":"localhost:${dead}".*ECONNREFUSED.*bridge cannot connect to \\$upstream`), { since: child.mark(), timeoutMs: 20_000 })
    await pair.linkChild(parent, { port: dead })
    await child.waitForLog(new RegExp(`"upstream":"localhost:${dead}".*upstream changed`))
    await line
    const [st] = await bridgeStatus(pair.child.home)
    assert.notEqual(st.state, 'connected')
    assert.equal(st.parent, `localhost:${dead}`)
    assert.match(st.lastError ?? '', /ECONNREFUSED/)
    await reportedBridges(pair.child.home, (b) => /ECONNREFUSED/.test(b[0]?.lastError ?? ''))
    await localStillServes('dead')
  })

  it('fixing the upstream live connects, clears lastError and delivers what waited', async () => {
    const watcher = await deviceClient(pair.parent, parent, 'watcher')
    try {
      await subscribeOk(watcher, ['/remote/messages/#'], 1)
      const got = collect(watcher, 1, { filter: (m) => m.topic === '/remote/messages/while-refused', timeoutMs: 40_000 })
      const connected = child.waitForLog(/bridge connected to \$upstream/, { since: child.mark(), timeoutMs: 40_000 })
      await pair.linkChild(parent)
      await connected
      assert.equal((await got)[0].payload.toString(), 'q')
      // The parent's PUBACK can reach the child after the watcher got the message: wait for the queue to empty.
      const st = await statusUntil(pair.child.home, (b) => b.queueLength === 0)
      assert.equal(st.state, 'connected')
      assert.equal(st.lastError, undefined)
    } finally {
      await watcher.endAsync(true)
    }
  })
})
