/**
 * Issue 4 "Must show", robustness: 1,000 seeded random garbage streams and truncated/oversized
 * packets sent to the plain and the TLS port (garbage both before and after a TLS handshake)
 * leave the broker up and serving. Reproducible: a mulberry32 PRNG with a fixed seed
 * (EDGEMQ_FUZZ_SEED overrides it; a failure prints the seed and the case).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'

import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { startBroker, type BrokerProc } from '../helpers/broker.js'
import { jsonOf, REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'
import { closed, collect, connect, iothubUsername } from '../helpers/mqtt.js'
import { mulberry32 } from '../helpers/prng.js'
import { remainingLength } from '../helpers/raw-socket.js'

const POLICY = resolve(REPO_ROOT, '../shared/fixtures/seed-policy-pubsub.json')
const SEED = Number(process.env.EDGEMQ_FUZZ_SEED ?? 0x5eed4)
const CASES = 1000
const PARALLEL = 16
const MAX_MESSAGE = 256 * 1024

function str(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8')
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

/** An MQTT 3.1.1 CONNECT (clean session, keepalive 60) with username and password. */
function connectPacket(clientId: string, username: string, password: string): Buffer {
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(clientId), str(username), str(password)])
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body])
}

function publishPacket(topic: string, payload: Buffer, qos: 0 | 1): Buffer {
  const body = Buffer.concat([str(topic), qos ? Buffer.from([0, 1]) : Buffer.alloc(0), payload])
  return Buffer.concat([Buffer.from([0x30 | (qos << 1)]), remainingLength(body.length), body])
}

type Target = 'plain' | 'tls' | 'tls-raw'
interface Case {
  i: number
  kind: string
  target: Target
  bytes: Buffer
}

describe('broker: garbage, truncated and oversized packets', () => {
  const home = tempHome()
  let broker: BrokerProc
  let ca: Buffer
  const keys = new Map<string, string>()
  const password = (d: string) => buildSasToken({ resource: deviceResource('edgemq', d), key: keys.get(d) as string, durationSecs: 3600 })

  before(async () => {
    for (const d of ['sub_client', 'pub_client']) {
      const r = await runCli(['device', 'create', d], { home })
      assert.equal(r.code, 0, r.stderr)
      keys.set(d, jsonOf<{ authentication: { symmetricKey: { primaryKey: string } } }>(r).authentication.symmetricKey.primaryKey)
    }
    const p = await runCli(['edgehub', 'set', POLICY], { home })
    assert.equal(p.code, 0, p.stderr)
    broker = await startBroker(home)
    ca = readFileSync(broker.caFile)
  })

  after(async () => {
    await broker?.stop()
  })

  function makeCases(): Case[] {
    const rnd = mulberry32(SEED)
    const int = (n: number) => Math.floor(rnd() * n)
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)))
    const validConnect = () => connectPacket('pub_client', iothubUsername('pub_client'), password('pub_client'))
    const cases: Case[] = []
    for (let i = 0; i < CASES; i++) {
      // Plain and TLS alternate; a third of the TLS ones are garbage before any handshake.
      const target: Target = i % 2 === 0 ? 'plain' : i % 6 === 5 ? 'tls-raw' : 'tls'
      const k = int(6)
      let kind: string
      let b: Buffer
      if (k === 0) {
        kind = 'random bytes'
        b = bytes(1 + int(4096))
      } else if (k === 1) {
        kind = 'random bytes after a CONNECT fixed-header byte'
        b = Buffer.concat([Buffer.from([0x10]), bytes(1 + int(512))])
      } else if (k === 2) {
        kind = 'valid CONNECT, then garbage'
        b = Buffer.concat([validConnect(), bytes(1 + int(1024))])
      } else if (k === 3) {
        kind = 'valid CONNECT + PUBLISH, truncated'
        const whole = Buffer.concat([validConnect(), publishPacket('test_topic', bytes(int(2048)), 1)])
        b = whole.subarray(0, 1 + int(whole.length - 1))
      } else if (k === 4) {
        kind = 'malformed remaining length (5-byte varint) or a 256 MB claim'
        b = int(2) === 0 ? Buffer.from([0x10 | (int(15) << 4), 0xff, 0xff, 0xff, 0xff, 0x7f, ...bytes(int(64))]) : Buffer.concat([validConnect(), Buffer.from([0x32, 0xff, 0xff, 0xff, 0x7f]), bytes(1 + int(4096))])
      } else {
        kind = 'random packet type and length byte, random body'
        b = Buffer.concat([Buffer.from([int(256), int(256)]), bytes(int(300))])
      }
      cases.push({ i, kind, target, bytes: b })
    }
    return cases
  }

  /** Sends one case, half-closes, and resolves when the broker has closed the connection (or 5 s passed). */
  let heldOpen = 0
  function send(c: Case): Promise<void> {
    return new Promise((resolvePromise) => {
      let sock: Socket
      const write = () => {
        sock.write(c.bytes)
        sock.end()
      }
      if (c.target === 'plain') sock = netConnect(broker.ports.mqtt, '127.0.0.1', write)
      else if (c.target === 'tls') sock = tlsConnect({ port: broker.ports.mqtts, host: '127.0.0.1', servername: 'localhost', ca }, write)
      else sock = netConnect(broker.ports.mqtts, '127.0.0.1', write)
      // A connection the broker keeps open past this is still fine (it waits for more bytes); we move on.
      const timer = setTimeout(() => (heldOpen++, sock.destroy()), 5000)
      sock.on('error', () => undefined) // resets are an expected answer to garbage
      sock.on('data', () => undefined)
      sock.on('close', () => {
        clearTimeout(timer)
        resolvePromise()
      })
    })
  }

  it(`${CASES} seeded garbage / truncated streams to both ports leave the broker up (seed ${SEED})`, async (t) => {
    const cases = makeCases()
    let next = 0
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]
        await send(c)
        assert.equal(broker.proc.exitCode, null, `broker died on case ${c.i} (${c.kind}, ${c.target}), seed ${SEED}`)
      }
    }
    await Promise.all(Array.from({ length: PARALLEL }, worker))
    t.diagnostic(`${cases.length} cases, ${heldOpen} still open after 5 s (destroyed by the test)`)
    assert.equal(broker.proc.exitCode, null)
    assert.equal(broker.proc.signalCode, null)
  })

  for (const port of ['mqtt', 'mqtts'] as const) {
    it(`a PUBLISH over 256 KB after a valid connect (${port}) → that client is disconnected; others are not`, async () => {
      const tls = port === 'mqtts' ? { ca } : undefined
      const sub = await connect({ port: broker.ports[port], clientId: 'sub_client', password: password('sub_client'), tls })
      await sub.subscribeAsync('test_topic', { qos: 1 })
      const pub = await connect({ port: broker.ports[port], clientId: 'pub_client', password: password('pub_client'), tls })
      const gone = closed(pub)
      pub.publish('test_topic', Buffer.alloc(MAX_MESSAGE + 1, 0x61), { qos: 1 })
      await gone
      await broker.waitForLog(/"client":"pub_client".*"step":"size".*larger than the hub's maximum/)
      assert.equal(sub.connected, true)
      await sub.endAsync()
    })
  }

  it('afterwards a normal client connects and pub/sub works on both ports; the process is alive', async () => {
    for (const port of ['mqtt', 'mqtts'] as const) {
      const tls = port === 'mqtts' ? { ca } : undefined
      const sub = await connect({ port: broker.ports[port], clientId: 'sub_client', password: password('sub_client'), tls })
      await sub.subscribeAsync('test_topic', { qos: 1 })
      const got = collect(sub, 1)
      const pub = await connect({ port: broker.ports[port], clientId: 'pub_client', password: password('pub_client'), tls })
      // Exactly the limit is still accepted.
      await pub.publishAsync('test_topic', Buffer.alloc(MAX_MESSAGE, 0x62), { qos: 1 })
      const [m] = await got
      assert.equal(m.payload.length, MAX_MESSAGE)
      await pub.endAsync()
      await sub.endAsync()
    }
    assert.doesNotThrow(() => process.kill(broker.pid, 0))
    // Nothing at error/fatal level: garbage is a client's problem, not the broker's.
    assert.doesNotMatch(broker.logs(), /"level":(50|60)/)
  })
})
