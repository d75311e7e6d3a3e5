/**
 * Issue 4 "Must show": the seed (Publish and subscribe with Azure IoT Edge), verbatim, against a
 * real `edgemq broker start` process — real mosquitto clients, devices made with the az-style
 * commands, SAS tokens from `edgemq sas`, the seed's pub/sub policy fixture.
 */
import assert from 'node:assert/strict'
import { resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { startTestHub, type TestHub } from '../helpers/hub.js'
import { REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'
import { closed, collect, connect, runProc } from '../helpers/mqtt.js'

const POLICY = resolve(REPO_ROOT, '../shared/fixtures/seed-policy-pubsub.json')
const SUB_USER = 'edgemq.azure-devices.net/sub_client/?api-version=2018-06-30'
const PUB_USER = 'edgemq.azure-devices.net/pub_client/?api-version=2018-06-30'

describe('broker: the seed, verbatim', () => {
  const home = tempHome()
  let broker: TestHub
  let subSas = ''
  let pubSas = ''

  before(async () => {
    // The seed's az commands, with edgemq's hub name and edge device.
    for (const d of ['sub_client', 'pub_client']) {
      const r = await runCli(['hub', 'device-identity', 'create', '--device-id', d, '--hub-name', 'edgemq', '--pd', 'edge-gateway'], { home })
      assert.equal(r.code, 0, r.stderr)
    }
    const p = await runCli(['edgehub', 'set', POLICY], { home })
    assert.equal(p.code, 0, p.stderr)
    // --log-level debug: the SUBSCRIBE log line tells us the subscriber is ready (no sleeps).
    broker = await startTestHub({ inMemory: false, home, logLevel: 'debug' })
    const [s, q] = await Promise.all([runCli(['sas', '--device', 'sub_client', '--raw'], { home }), runCli(['sas', '--device', 'pub_client', '--raw'], { home })])
    assert.equal(s.code, 0, s.stderr)
    assert.equal(q.code, 0, q.stderr)
    subSas = s.stdout.trim()
    pubSas = q.stdout.trim()
    assert.match(subSas, /^SharedAccessSignature sr=edgemq\.azure-devices\.net%2Fdevices%2Fsub_client&sig=/)
  })

  after(async () => {
    await broker?.stop()
  })

  it('mosquitto_sub receives "hello" from mosquitto_pub on the plain port (seed commands + -C 1)', async () => {
    const port = String(broker.ports.mqtt)
    // The seed's command; `-C 1` only makes it exit after the one message.
    const subscribed = broker.waitForLog(/"client":"sub_client".*"msg":"SUBSCRIBE"/, { since: broker.mark() })
    const sub = runProc('mosquitto_sub', ['-t', 'test_topic', '-i', 'sub_client', '-u', SUB_USER, '-P', subSas, '-h', 'localhost', '-V', 'mqttv311', '-p', port, '-C', '1'])
    await subscribed
    const pub = await runProc('mosquitto_pub', ['-t', 'test_topic', '-i', 'pub_client', '-u', PUB_USER, '-P', pubSas, '-h', 'localhost', '-V', 'mqttv311', '-p', port, '-m', 'hello']).done
    assert.equal(pub.code, 0, pub.stderr)
    const r = await sub.done
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'hello\n')
  })

  it('the same over TLS with --cafile (the hub CA) on the mqtts port', async () => {
    const port = String(broker.ports.mqtts)
    const ca = await runCli(['cert', 'ca'], { home })
    assert.equal(ca.code, 0, ca.stderr)
    // `edgemq cert ca` names the CA file the broker's server cert chains to.
    assert.ok(ca.stdout.includes(broker.caFile), ca.stdout)
    const tls = ['--cafile', broker.caFile]
    const subscribed = broker.waitForLog(/"client":"sub_client".*"msg":"SUBSCRIBE"/, { since: broker.mark() })
    const sub = runProc('mosquitto_sub', ['-t', 'test_topic', '-i', 'sub_client', '-u', SUB_USER, '-P', subSas, '-h', 'localhost', '-V', 'mqttv311', '-p', port, ...tls, '-C', '1'])
    await subscribed
    const pub = await runProc('mosquitto_pub', ['-t', 'test_topic', '-i', 'pub_client', '-u', PUB_USER, '-P', pubSas, '-h', 'localhost', '-V', 'mqttv311', '-p', port, ...tls, '-m', 'hello']).done
    assert.equal(pub.code, 0, pub.stderr)
    const r = await sub.done
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.stdout.split('\n').includes('hello'), r.stdout)
  })

  it('pub_client publishing outside its policy (another topic) is disconnected', async () => {
    const c = await connect({ port: broker.ports.mqtt, clientId: 'pub_client', password: pubSas })
    const gone = closed(c)
    c.publish('another_topic', 'nope', { qos: 1 })
    await gone
    await broker.waitForLog(/"client":"pub_client".*"topic":"another_topic".*publish denied/)
  })

  it('sub_client subscribing outside its policy gets SUBACK 0x80 for that filter only', async () => {
    const c = await connect({ port: broker.ports.mqtt, clientId: 'sub_client', password: subSas })
    try {
      // MQTT.js reports any 0x80 in a SUBACK as an error carrying the whole packet.
      const suback = await c.subscribeAsync({ test_topic: { qos: 0 }, other_topic: { qos: 0 } }).then(
        () => assert.fail('other_topic should have been refused'),
        (err: Error & { packet?: { granted?: number[] } }) => err.packet?.granted,
      )
      assert.deepEqual(suback, [0, 128])
      const got = collect(c, 1)
      const p = await connect({ port: broker.ports.mqtt, clientId: 'pub_client', password: pubSas })
      await p.publishAsync('test_topic', 'via mqtt.js', { qos: 1 })
      await p.endAsync()
      assert.equal((await got)[0].payload.toString(), 'via mqtt.js')
    } finally {
      await c.endAsync()
    }
  })

  it('edgemq pub / sub --device deliver "hello"', async () => {
    const subscribed = broker.waitForLog(/"client":"sub_client".*"msg":"SUBSCRIBE"/, { since: broker.mark(), timeoutMs: 20_000 })
    // The CLI finds the broker through <home>/broker.json, so no port is passed.
    const sub = runCli(['sub', '--device', 'sub_client', '-t', 'test_topic', '-C', '1'], { home })
    // If `sub` dies first, fail with its output rather than a log timeout.
    await Promise.race([subscribed, sub.then((r) => assert.fail(`edgemq sub exited ${r.code} before subscribing:\n${r.stdout}\n${r.stderr}`))])
    const pub = await runCli(['pub', '--device', 'pub_client', '-t', 'test_topic', '-m', 'hello'], { home })
    assert.equal(pub.code, 0, pub.stderr)
    const r = await sub
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'hello\n')
  })
})
