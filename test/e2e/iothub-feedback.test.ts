/**
 * C2D delivery feedback from the CLI (issue 18): `c2d send --ack full` to a device that PUBACKs the
 * message, then `hub monitor-feedback -w <id>` prints the Success record and exits; the record is
 * consumed (a second reader times out, exit 4); `--device` leaves other devices' records queued.
 * Plus `broker start --amqps-port 0 --amqp-port 0` reporting both ports in its ready line and
 * answering AMQP on them. The CLI is what is under test (exit codes), so these are child processes.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect as tlsConnect } from 'node:tls'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { startBroker } from '../helpers/broker.js'
import { cliJson, jsonOf, runCli, tempHome } from '../helpers/cli.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { subscribeOk, nextMessage } from '../helpers/mqtt.js'
import { rawDevice, setupHub } from '../helpers/raw-mqtt.js'

const home = tempHome()
let broker: TestHub
let fdev: MqttClient

before(async () => {
  await setupHub(home, ['fdev', 'fother'])
  broker = await startTestHub({ inMemory: false, home })
  fdev = await rawDevice(home, broker, 'fdev')
  await subscribeOk(fdev, 'devices/fdev/messages/devicebound/#', 1)
})
after(async () => {
  await fdev?.endAsync()
  await broker?.stop()
})

interface Record {
  originalMessageId: string
  deviceId: string
  statusCode: string
  description: string
}

test('c2d send --ack full → the device completes it → hub monitor-feedback -w prints the Success record; it is consumed', async () => {
  const got = nextMessage(fdev)
  const sent = await cliJson<{ messageId: string; queued: boolean }>(home, ['c2d', 'send', '-d', 'fdev', '--data', 'reboot', '--ack', 'full', '--props', '$.mid=fb-1'])
  assert.deepEqual(sent, { messageId: 'fb-1', queued: false })
  await got
  const r = await runCli(['hub', 'monitor-feedback', '-d', 'fdev', '-w', 'fb-1', '--timeout', '20', '-o', 'json'], { home })
  assert.equal(r.code, 0, r.stderr)
  const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record)
  assert.equal(records.length, 1)
  assert.equal(records[0].originalMessageId, 'fb-1')
  assert.equal(records[0].statusCode, 'Success')
  assert.equal(records[0].deviceId, 'fdev')

  // Read once: nothing is left for a second reader, which times out waiting (exit 4).
  const again = await runCli(['hub', 'monitor-feedback', '-d', 'fdev', '-w', 'fb-1', '--timeout', '2'], { home })
  assert.equal(again.code, 4, again.stderr)
  assert.equal(again.stdout.trim(), '')
  assert.match(again.stderr, /no feedback for message "fb-1"/)
})

test('monitor-feedback -d takes only that device\'s records; an Expired record comes for a negative ack', async () => {
  // fother never subscribes: its message waits in the C2D queue and expires there.
  const expiry = new Date(Date.now() + 500).toISOString()
  await cliJson(home, ['c2d', 'send', '-d', 'fother', '--data', 'x', '--ack', 'negative', '--props', `$.mid=fb-2;$.exp=${expiry}`])
  const got = nextMessage(fdev)
  await cliJson(home, ['c2d', 'send', '-d', 'fdev', '--data', 'y', '--ack', 'positive', '--props', '$.mid=fb-3'])
  await got
  const mine = await runCli(['hub', 'monitor-feedback', '-d', 'fdev', '-w', 'fb-3', '--timeout', '20'], { home })
  assert.equal(mine.code, 0, mine.stderr)
  assert.deepEqual(mine.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Record).originalMessageId), ['fb-3'])
  const other = await runCli(['hub', 'monitor-feedback', '-w', 'fb-2', '--timeout', '20'], { home })
  assert.equal(other.code, 0, other.stderr)
  const rec = other.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record)
  assert.deepEqual(rec.map((x) => [x.originalMessageId, x.deviceId, x.statusCode, x.description]), [['fb-2', 'fother', 'Expired', 'Message Expired']])
})

test('broker start --amqps-port 0 --amqp-port 0: both ports in the ready line and in broker status; TLS AMQP answers with the AMQP header', async () => {
  const h = tempHome()
  const b = await startBroker(h, ['--amqps-port', '0', '--amqp-port', '0'])
  try {
    const ports = b.ports as typeof b.ports & { amqps?: number; amqp?: number }
    assert.ok(ports.amqps && ports.amqps > 0, JSON.stringify(ports))
    assert.ok(ports.amqp && ports.amqp > 0, JSON.stringify(ports))
    const status = jsonOf<{ ports: { amqps?: number; amqp?: number } }>(await runCli(['broker', 'status', '-o', 'json'], { home: h }))
    assert.equal(status.ports.amqps, ports.amqps)
    assert.equal(status.ports.amqp, ports.amqp)
    // An AMQP 1.0 header over TLS is answered with the server's own (SASL) header.
    const s = tlsConnect({ host: '127.0.0.1', port: ports.amqps, rejectUnauthorized: false })
    await once(s, 'secureConnect')
    s.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]))
    const [head] = (await once(s, 'data')) as [Buffer]
    assert.deepEqual([...head.subarray(0, 8)], [0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0])
    s.destroy()
  } finally {
    await b.stop()
  }
})

test('az c2d-message receive --reject / receive --lt + complete -e: the az shape from the queue, settled, and the Rejected feedback', async () => {
  // fother is not subscribed, so its messages wait in its C2D queue.
  await cliJson(home, ['c2d', 'send', '-d', 'fother', '--data', 'bad', '--ack', 'full', '--props', '$.mid=rj-1;k=v'])
  const rejected = await cliJson<{ data: string; etag: string; properties: { app: { k: string }; system: { 'iothub-messageid': string } } }>(home, ['device', 'c2d-message', 'receive', '-d', 'fother', '--reject', '-o', 'json'])
  assert.equal(rejected.data, 'bad')
  assert.equal(rejected.properties.app.k, 'v')
  assert.equal(rejected.properties.system['iothub-messageid'], 'rj-1')
  const fb = await runCli(['hub', 'monitor-feedback', '-d', 'fother', '-w', 'rj-1', '--timeout', '20', '-o', 'json'], { home })
  assert.equal(fb.code, 0, fb.stderr)
  assert.equal((JSON.parse(fb.stdout.trim().split('\n')[0]) as Record).statusCode, 'Rejected')

  await cliJson(home, ['c2d', 'send', '-d', 'fother', '--data', 'good'])
  const locked = await cliJson<{ etag: string }>(home, ['c2d', 'receive', '-d', 'fother', '--lt', '30', '-o', 'json'])
  const done = await cliJson<{ settled: string }>(home, ['device', 'c2d-message', 'complete', '-d', 'fother', '-e', locked.etag, '-o', 'json'])
  assert.equal(done.settled, 'complete')
  const twice = await runCli(['c2d', 'complete', '-d', 'fother', '-e', locked.etag], { home })
  assert.equal(twice.code, 1)
  assert.match(twice.stderr, /locked/)
})
