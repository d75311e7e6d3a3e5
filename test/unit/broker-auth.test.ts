/**
 * Issue 4 "Must show": refusals with the exact CONNACK codes of PROTOCOL.md §1 (4 = bad
 * credentials, 5 = unknown/disabled identity, 2 = bad client id, 1 = unsupported protocol), the
 * real reason logged at info without the token's signature, and takeover.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { buildSasToken, deviceResource, parseSasToken } from '../../src/sas/index.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { closed, collect, connackCode, connect, iothubUsername } from '../helpers/mqtt.js'
import { SEED_FIXTURES } from '../helpers/paths.js'

const POLICY = join(SEED_FIXTURES, 'seed-policy-pubsub.json')

/** Sends raw bytes and resolves with the broker's first reply (or an empty buffer if it just closes). */
async function rawReply(port: number, bytes: Buffer): Promise<Buffer> {
  const sock = netConnect(port, '127.0.0.1')
  await once(sock, 'connect')
  sock.write(bytes)
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => (sock.destroy(), reject(new Error('no reply within 5 s'))), 5000)
    sock.once('data', (d: Buffer) => (clearTimeout(timer), sock.destroy(), resolvePromise(d)))
    sock.once('close', () => (clearTimeout(timer), resolvePromise(Buffer.alloc(0))))
    sock.once('error', () => undefined)
  })
}

describe('broker: refusals with exact CONNACK codes', () => {
  let broker: TestHub
  let key = ''
  /** Every token handed to the broker, so the test can check none of their signatures was logged. */
  const sent: string[] = []

  const token = (deviceId: string, k: string, expiry?: number) => {
    const t = buildSasToken({ resource: deviceResource('edgemq', deviceId), key: k, ...(expiry ? { expiry } : { durationSecs: 3600 }) })
    sent.push(t)
    return t
  }

  before(async () => {
    // Clock skew 0: a token is expired the second its `se` passes.
    broker = await startTestHub({ clockSkewSecs: 0, ports: { mqtts: null, rest: null } })
    key = (await broker.hub.createDevice('d1')).primaryKey as string
    await broker.hub.createDevice('d2')
    await broker.hub.createDevice('dis', { status: 'disabled' })
    await broker.hub.setEdgeHub(readFileSync(POLICY, 'utf8'))
  })

  after(async () => {
    await broker?.stop()
  })

  const port = () => broker.ports.mqtt

  it('a valid SAS token connects (0)', async () => {
    assert.equal(await connackCode({ port: port(), clientId: 'd1', password: token('d1', key) }), 0)
    await broker.waitForLog(/"client":"d1","auth":"sas".*client connected/)
  })

  it('expired token (`edgemq sas --expiry <past>` makes the same: cli-registry) → 4, logged as "expired 12 min ago"', async () => {
    const past = Math.floor(Date.now() / 1000) - 12 * 60
    assert.equal(await connackCode({ port: port(), clientId: 'd1', password: token('d1', key, past) }), 4)
    await broker.waitForLog(/"client":"d1".*"code":4.*SAS token expired 12 min ago/)
  })

  it('forged signature → 4', async () => {
    assert.equal(await connackCode({ port: port(), clientId: 'd1', password: token('d1', randomBytes(32).toString('base64')) }), 4)
    await broker.waitForLog(/"client":"d1".*"code":4.*signature does not match primary or secondary key/)
  })

  it('wrong hub in the username → 4', async () => {
    const password = token('d1', key)
    assert.equal(await connackCode({ port: port(), clientId: 'd1', password, username: iothubUsername('d1', 'otherhub.azure-devices.net') }), 4)
    await broker.waitForLog(/"client":"d1".*"code":4.*names hub \\"otherhub/)
  })

  it('username / client id mismatch → 4', async () => {
    assert.equal(await connackCode({ port: port(), clientId: 'd1', password: token('d1', key), username: iothubUsername('d2') }), 4)
    await broker.waitForLog(/"client":"d1".*"code":4.*does not match client id/)
  })

  it('unknown device → 5', async () => {
    assert.equal(await connackCode({ port: port(), clientId: 'ghost', password: token('ghost', key) }), 5)
    await broker.waitForLog(/"client":"ghost".*"code":5.*unknown device/)
  })

  it('disabled device → 5', async () => {
    assert.equal(await connackCode({ port: port(), clientId: 'dis', password: token('dis', key) }), 5)
    await broker.waitForLog(/"client":"dis".*"code":5.*is disabled/)
  })

  it('malformed token → 4', async () => {
    for (const bad of ['not a token', 'SharedAccessSignature sr=edgemq.azure-devices.net%2Fdevices%2Fd1&se=notanumber']) {
      assert.equal(await connackCode({ port: port(), clientId: 'd1', password: bad }), 4, bad)
    }
    await broker.waitForLog(/"client":"d1".*"code":4.*malformed SAS token/)
  })

  it('no password → 4', async () => {
    assert.equal(await connackCode({ port: port(), clientId: 'd1' }), 4)
    await broker.waitForLog(/"client":"d1".*"code":4.*no password/)
  })

  it('bad client id → 2', async () => {
    assert.equal(await connackCode({ port: port(), clientId: 'a/b/c', password: token('a', key), username: iothubUsername('a/b/c') }), 2)
    await broker.waitForLog(/"client":"a\/b\/c".*"code":2/)
  })

  it('an unsupported protocol (MQTT 5 CONNECT) → CONNACK 1', async () => {
    // CONNECT: "MQTT", level 5, clean session, keepalive 60, empty properties, client id "d1".
    const connect5 = Buffer.from([0x10, 15, 0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 0x02, 0, 60, 0, 0, 2, 0x64, 0x31])
    const reply = await rawReply(port(), connect5)
    assert.deepEqual([...reply.subarray(0, 4)], [0x20, 2, 0, 1])
  })

  it('never logs a token signature', () => {
    const logs = broker.logs()
    for (const t of sent) {
      let sig: string
      try {
        sig = parseSasToken(t).sig
      } catch {
        continue
      }
      assert.ok(!logs.includes(sig), 'decoded signature logged')
      assert.ok(!logs.includes(encodeURIComponent(sig)), 'encoded signature logged')
    }
  })

  it('takeover: a second client with the same id disconnects the first', async () => {
    const first = await connect({ port: port(), clientId: 'd1', password: token('d1', key) })
    const firstGone = closed(first)
    const second = await connect({ port: port(), clientId: 'd1', password: token('d1', key) })
    try {
      await firstGone
      assert.equal(second.connected, true)
      // The survivor still works: it can publish to its own telemetry topic and get the PUBACK.
      await second.publishAsync('devices/d1/messages/events/', 'still here', { qos: 1 })
      // And it owns its IoT Hub responses: a twin GET comes back to it.
      await second.subscribeAsync('$iothub/twin/res/#')
      const res = collect(second, 1)
      await second.publishAsync('$iothub/twin/GET/?$rid=1', '')
      assert.match((await res)[0].topic, /^\$iothub\/twin\/res\/200\/\?\$rid=1/)
    } finally {
      await second.endAsync()
    }
  })
})
