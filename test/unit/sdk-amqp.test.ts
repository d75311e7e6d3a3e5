/**
 * The official service SDK's `Client` (azure-iothub, unchanged) over AMQP against an in-process hub
 * (issue 18): `send` to an online MQTT device (message id, correlation id, application properties
 * arrive), to an offline device (delivered when it subscribes), an expired message never delivered,
 * an unknown device → DeviceNotFoundError, a wrong key → the SDK's UnauthorizedError (wrapped by open()), and delivery feedback
 * read with `getFeedbackReceiver` once the device completes (PUBACKs) a message that asked for it;
 * then the same send + feedback over `AmqpWs`.
 *
 * Ports: the Client dials amqps://<HostName>:5671 (AmqpWs: wss://<HostName>:443/$iothub/websocket),
 * so this hub listens on exactly those and the file runs in the runner's one-at-a-time SDK group.
 * The Client runs in a child (helpers/sdk-amqp-child.ts) that trusts the hub CA through
 * NODE_EXTRA_CA_CERTS; the devices are MQTT.js clients here.
 */
import assert from 'node:assert/strict'
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { parsePropertyBag } from '../../src/iothub/index.js'
import { connect, nextMessage, subscribeOk } from '../helpers/mqtt.js'
import { helperScript } from '../helpers/paths.js'

const CHILD = helperScript('sdk-amqp-child')

let hub: Hub
let dir: string

interface Reply {
  id: number
  ok: boolean
  result?: unknown
  error?: { name: string; message: string; cause?: string }
}

/** The service SDK in a child process: `call(op, args)` resolves with its result or rejects with its error (name kept). */
class ServiceSdk {
  private next = 1
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  private stderr = ''
  private constructor(readonly child: ChildProcess) {
    child.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()))
    child.on('message', (m: unknown) => {
      const r = m as Reply
      const p = this.pending.get(r.id)
      if (!p) return
      this.pending.delete(r.id)
      if (r.ok) p.resolve(r.result)
      else p.reject(Object.assign(new Error(`${r.error?.name}: ${r.error?.message}`), { name: r.error?.name ?? 'Error', cause: r.error?.cause }))
    })
    child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`SDK child exited (${code}): ${this.stderr}`))
      this.pending.clear()
    })
  }

  static async start(caFile: string): Promise<ServiceSdk> {
    const child = fork(CHILD.path, [], {
      execArgv: CHILD.execArgv,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined, NODE_EXTRA_CA_CERTS: caFile },
    })
    const sdk = new ServiceSdk(child)
    await new Promise<void>((resolve, reject) => {
      sdk.pending.set(0, { resolve: () => resolve(), reject })
    })
    return sdk
  }

  call(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<unknown> {
    const id = this.next++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`SDK ${op} did not answer within ${timeoutMs} ms; stderr: ${this.stderr}`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      })
      this.child.send({ id, op, ...args })
    })
  }

  async stop(): Promise<void> {
    await this.call('close').catch(() => undefined)
    this.child.disconnect()
    if (this.child.exitCode === null) await once(this.child, 'exit')
  }
}

async function device(id: string, opts: { subscribe?: boolean } = {}): Promise<MqttClient> {
  const c = await connect({ port: hub.ports.mqtt as number, clientId: id, password: await hub.sas(id) })
  if (opts.subscribe !== false) await subscribeOk(c, `devices/${id}/messages/devicebound/#`, 1)
  return c
}

function bagOf(topic: string) {
  return parsePropertyBag(topic.slice(topic.indexOf('/devicebound/') + '/devicebound/'.length))
}

before(async () => {
  hub = await startHub({ hubName: 'edgemq', ports: { mqtt: 0, mqtts: null, rest: 443, amqps: 5671 } })
  for (const id of ['online', 'offline', 'expiring', 'wsdev']) await hub.createDevice(id)
  dir = mkdtempSync(join(tmpdir(), 'edgemq-amqp-'))
  writeFileSync(join(dir, 'hub-ca.pem'), hub.caPem)
})
after(async () => {
  await hub?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

test('Client (Amqp on 5671): send to an online and an offline device, expiry, unknown device, feedback after the device completes', async () => {
  assert.equal(hub.ports.amqps, 5671)
  const sdk = await ServiceSdk.start(join(dir, 'hub-ca.pem'))
  const online = await device('online')
  try {
    await sdk.call('open', { cs: hub.serviceConnectionString() })

    // Online: delivered at once, with its system and application properties.
    const got = nextMessage(online)
    await sdk.call('send', { deviceId: 'online', data: 'hello over amqp', messageId: 'm-1', correlationId: 'c-1', ack: 'full', properties: { color: 'blue', n: '3' } })
    const m = await got
    assert.equal(m.payload.toString(), 'hello over amqp')
    assert.equal(m.qos, 1)
    const bag = bagOf(m.topic)
    assert.equal(bag.systemProperties.messageId, 'm-1')
    assert.equal(bag.systemProperties.correlationId, 'c-1')
    assert.deepEqual(bag.properties, { color: 'blue', n: '3' })

    // MQTT.js PUBACKed it (QoS 1): the device completed it, and full ack asked for a Success record.
    const fb = (await sdk.call('feedback', { messageId: 'm-1' })) as { record: Record<string, string>; contentType?: string }
    assert.equal(fb.record.statusCode, 'Success')
    assert.equal(fb.record.deviceId, 'online')
    assert.equal(fb.record.description, 'Success')
    assert.equal(fb.contentType, 'application/vnd.microsoft.iothub.feedback.json')
    assert.equal(fb.record.deviceGenerationId, (await hub.context.registry.getDevice('online')).generationId)
    assert.ok(!Number.isNaN(Date.parse(fb.record.enqueuedTimeUtc)))

    // Offline: queued, delivered when the device subscribes.
    const queuedAt = hub.broker.iothub.c2d.depth('offline')
    await sdk.call('send', { deviceId: 'offline', data: 'waited for you', messageId: 'm-2', properties: { k: 'v' } })
    assert.equal(hub.broker.iothub.c2d.depth('offline'), queuedAt + 1)
    // Expired before the device comes: never delivered (and a negative ack gets an Expired record).
    await sdk.call('send', { deviceId: 'expiring', data: 'too late', messageId: 'm-3', ack: 'negative', expiryTimeUtc: new Date(Date.now() + 300).toISOString() })
    const expired = (await sdk.call('feedback', { messageId: 'm-3' })) as { record: Record<string, string> }
    assert.equal(expired.record.statusCode, 'Expired')
    assert.equal(expired.record.deviceId, 'expiring')

    const offline = await device('offline', { subscribe: false })
    const late = nextMessage(offline)
    await subscribeOk(offline, 'devices/offline/messages/devicebound/#', 1)
    const l = await late
    assert.equal(l.payload.toString(), 'waited for you')
    assert.equal(bagOf(l.topic).systemProperties.messageId, 'm-2')
    assert.equal(bagOf(l.topic).properties.k, 'v')
    await offline.endAsync()

    const exp = await device('expiring', { subscribe: false })
    try {
      await subscribeOk(exp, 'devices/expiring/messages/devicebound/#', 1)
      assert.equal(hub.broker.iothub.c2d.depth('expiring'), 0)
      // The proof nothing came: a later message is the first the device sees.
      const next = nextMessage(exp)
      await sdk.call('send', { deviceId: 'expiring', data: 'fresh', messageId: 'm-4' })
      assert.equal((await next).payload.toString(), 'fresh')
    } finally {
      await exp.endAsync()
    }

    // Unknown device: the SDK's own DeviceNotFoundError.
    await assert.rejects(sdk.call('send', { deviceId: 'ghost', data: 'x' }), (err: Error) => err.name === 'DeviceNotFoundError')
  } finally {
    await online.endAsync()
    await sdk.stop()
  }
})

test('Client (Amqp): a full C2D queue answers DeviceMaximumQueueDepthExceededError; a wrong key UnauthorizedError', async () => {
  const sdk = await ServiceSdk.start(join(dir, 'hub-ca.pem'))
  try {
    await hub.createDevice('full')
    await sdk.call('open', { cs: hub.serviceConnectionString() })
    for (let i = 0; i < 50; i++) await sdk.call('send', { deviceId: 'full', data: `#${i}` })
    await assert.rejects(sdk.call('send', { deviceId: 'full', data: '#50' }), (err: Error) => err.name === 'DeviceMaximumQueueDepthExceededError')
    await sdk.call('close')

    const wrong = hub.serviceConnectionString().replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 9).toString('base64')}`)
    // The SDK wraps the CBS 401 (its UnauthorizedError) in "AMQP Transport: Could not connect", against IoT Hub too.
    await assert.rejects(sdk.call('open', { cs: wrong }), (err: Error) => /Could not connect/.test(err.message) && err.cause === 'UnauthorizedError')
  } finally {
    await sdk.stop()
  }
})

test('Client (AmqpWs on 443): send to a device and read its feedback', async () => {
  const sdk = await ServiceSdk.start(join(dir, 'hub-ca.pem'))
  const d = await device('wsdev')
  try {
    await sdk.call('open', { cs: hub.serviceConnectionString(), transport: 'AmqpWs' })
    const got = nextMessage(d)
    await sdk.call('send', { deviceId: 'wsdev', data: 'over wss', messageId: 'ws-1', ack: 'positive', properties: { via: 'AmqpWs' } })
    const m = await got
    assert.equal(m.payload.toString(), 'over wss')
    assert.equal(bagOf(m.topic).properties.via, 'AmqpWs')
    const fb = (await sdk.call('feedback', { messageId: 'ws-1' })) as { record: Record<string, string> }
    assert.equal(fb.record.statusCode, 'Success')
    assert.equal(fb.record.deviceId, 'wsdev')
  } finally {
    await d.endAsync()
    await sdk.stop()
  }
})
