/**
 * The built-in Event Hubs-compatible endpoint (issue 18) read by the unmodified `@azure/event-hubs`
 * `EventHubConsumerClient`, against an in-process hub on a free plain AMQP port (the emulator-style
 * connection string, `UseDevelopmentEmulator=true`, with the port in its endpoint). Devices publish
 * with MQTT.js at QoS 1; what they send is what the client reads, with IoT Hub's annotations.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import type { MqttClient } from 'mqtt'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { createConsumerGroup } from '../../src/eventhubs/consumer-groups.js'
import { partitionOf } from '../../src/eventhubs/partition.js'
import { collectEvents, earliestEventPosition, EventHubConsumerClient, latestEventPosition, type Received } from '../helpers/eventhubs.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { connect } from '../helpers/mqtt.js'

/** Two device ids that land in different partitions of 4. */
const D1 = 'sensor-a'
const D2 = ['sensor-b', 'sensor-c', 'sensor-d', 'sensor-e'].find((d) => partitionOf(d, 4) !== partitionOf(D1, 4)) as string

let t: TestHub
let cs: string
const clients: EventHubConsumerClient[] = []

function consumer(group = '$Default', connectionString = cs, timeoutInMs = 10_000): EventHubConsumerClient {
  const c = new EventHubConsumerClient(group, connectionString, { retryOptions: { maxRetries: 1, timeoutInMs, retryDelayInMs: 200 } })
  clients.push(c)
  return c
}

async function device(hub: Hub, port: number, deviceId: string): Promise<MqttClient> {
  return connect({ port, clientId: deviceId, password: await hub.sas(deviceId) })
}

/** QoS 1 telemetry with system and application properties in the topic's property bag. */
async function send(client: MqttClient, deviceId: string, i: number): Promise<void> {
  const props = `$.mid=${deviceId}-${i}&$.ct=application%2Fjson&$.ce=utf-8&seq=${i}&source=${deviceId}`
  await client.publishAsync(`devices/${deviceId}/messages/events/${props}`, JSON.stringify({ deviceId, i }), { qos: 1 })
}

before(async () => {
  t = await startTestHub({ ports: { mqtts: null, rest: null, amqp: 0 } })
  await t.hub.createDevice(D1)
  await t.hub.createDevice(D2)
  cs = t.hub.eventHubConnectionString()
  assert.match(cs, new RegExp(`^Endpoint=sb://localhost:${t.hub.ports.amqp}/;SharedAccessKeyName=iothubowner;SharedAccessKey=[^;]+;EntityPath=edgemq;UseDevelopmentEmulator=true$`))
  const [c1, c2] = [await device(t.hub, t.ports.mqtt, D1), await device(t.hub, t.ports.mqtt, D2)]
  for (let i = 0; i < 5; i++) {
    await send(c1, D1, i)
    await send(c2, D2, i)
  }
  await Promise.all([c1.endAsync(), c2.endAsync()])
})

after(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  await t?.stop()
})

const bodyOf = (r: Received) => r.event.body as { deviceId: string; i: number }

/** The SDK retries, then rejects with an AggregateError of its attempts: their messages. */
type SdkError = Error & { code?: string; errors?: SdkError[] }
const reasons = (err: SdkError) => (err.errors ?? [err]).map((e) => `${e.code ?? e.name}: ${e.message}`).join('; ')

test('subscribe from earliest: both devices\' telemetry, each in its device\'s partition and in order, with device ids, properties and annotations', async () => {
  const c = collectEvents(consumer(), 10, { startPosition: earliestEventPosition })
  const got = await c.done
  await c.close()
  for (const deviceId of [D1, D2]) {
    const mine = got.filter((r) => r.event.systemProperties?.['iothub-connection-device-id'] === deviceId)
    assert.deepEqual(mine.map((r) => bodyOf(r).i), [0, 1, 2, 3, 4], `${deviceId} in order`)
    assert.ok(mine.every((r) => r.partitionId === String(partitionOf(deviceId, 4))), `${deviceId} always in partition ${partitionOf(deviceId, 4)}`)
    assert.deepEqual(mine.map((r) => r.event.sequenceNumber), [0, 1, 2, 3, 4])
    const first = mine[0].event
    assert.deepEqual(first.properties, { seq: '0', source: deviceId })
    assert.equal(first.messageId, `${deviceId}-0`)
    assert.equal(first.contentType, 'application/json')
    assert.equal(first.systemProperties?.contentEncoding, 'utf-8')
    assert.equal(first.systemProperties?.['iothub-message-source'], 'Telemetry')
    assert.match(String(first.systemProperties?.['iothub-connection-auth-method']), /"type":"sas"/)
    assert.ok(first.systemProperties?.['iothub-connection-auth-generation-id'], 'generation id')
    assert.equal(typeof first.systemProperties?.['iothub-enqueuedtime'], 'number')
    assert.ok(first.enqueuedTimeUtc instanceof Date && Math.abs(first.enqueuedTimeUtc.getTime() - Date.now()) < 60_000)
    assert.match(first.offset, /^\d+$/)
  }
})

test('getEventHubProperties, getPartitionIds and getPartitionProperties answer', async () => {
  const c = consumer()
  const props = await c.getEventHubProperties()
  assert.equal(props.name, t.hub.name)
  assert.deepEqual(props.partitionIds, ['0', '1', '2', '3'])
  assert.ok(props.createdOn instanceof Date && !Number.isNaN(props.createdOn.getTime()))
  assert.deepEqual(await c.getPartitionIds(), ['0', '1', '2', '3'])
  const p = await c.getPartitionProperties(String(partitionOf(D1, 4)))
  assert.equal(p.eventHubName, t.hub.name)
  assert.equal(p.beginningSequenceNumber, 0)
  assert.equal(p.lastEnqueuedSequenceNumber, 4)
  assert.equal(p.isEmpty, false)
  assert.ok(p.lastEnqueuedOnUtc.getTime() > 0)
  const empty = ['0', '1', '2', '3'].find((id) => id !== String(partitionOf(D1, 4)) && id !== String(partitionOf(D2, 4))) as string
  const e = await c.getPartitionProperties(empty)
  assert.equal(e.isEmpty, true)
  assert.equal(e.lastEnqueuedSequenceNumber, -1)
  await assert.rejects(c.getPartitionProperties('7'), (err: Error) => /partition "7" does not exist/.test(reasons(err)))
})

test('start positions: sequence number, offset and enqueued time, inclusive or not', async () => {
  const pid = String(partitionOf(D1, 4))
  const all = collectEvents(consumer(), 5, { startPosition: earliestEventPosition, partitionId: pid })
  const events = (await all.done).map((r) => r.event)
  await all.close()
  const from = async (startPosition: Parameters<typeof collectEvents>[2]['startPosition'], n: number) => {
    const c = collectEvents(consumer(), n, { startPosition, partitionId: pid })
    const got = await c.done
    await c.close()
    return got.map((r) => r.event.sequenceNumber)
  }
  assert.deepEqual(await from({ sequenceNumber: 2 }, 2), [3, 4])
  assert.deepEqual(await from({ sequenceNumber: 2, isInclusive: true }, 3), [2, 3, 4])
  assert.deepEqual(await from({ offset: events[1].offset }, 3), [2, 3, 4])
  assert.deepEqual(await from({ offset: events[1].offset, isInclusive: true }, 4), [1, 2, 3, 4])
  assert.deepEqual(await from({ enqueuedOn: new Date(events[0].enqueuedTimeUtc.getTime() - 1) }, 5), [0, 1, 2, 3, 4])
})

test('latest: only what is sent after the reader attached', async () => {
  const pid = String(partitionOf(D1, 4))
  const mark = t.mark()
  const c = collectEvents(consumer(), 1, { startPosition: latestEventPosition, partitionId: pid })
  await t.waitForLog(/Event Hubs reader attached/, { since: mark })
  const d = await device(t.hub, t.ports.mqtt, D1)
  await send(d, D1, 99)
  await d.endAsync()
  const [r] = await c.done
  await c.close()
  assert.equal(bodyOf(r).i, 99)
  assert.equal(r.event.sequenceNumber, 5)
})

test('a created consumer group reads on its own; an unknown one is refused', async () => {
  await createConsumerGroup(t.hub.context, 'analytics')
  const c = collectEvents(consumer('analytics'), 10, { startPosition: earliestEventPosition })
  assert.equal((await c.done).length, 10)
  await c.close()
  const unknown = collectEvents(consumer('nosuchgroup'), 1, { startPosition: earliestEventPosition, partitionId: '0' })
  assert.match(reasons(await unknown.firstError), /consumer group "nosuchgroup" does not exist/)
  await unknown.close()
  assert.equal(unknown.received.length, 0)
})

test('a wrong key or a policy without ServiceConnect is refused', async () => {
  const wrong = cs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`)
  await assert.rejects(consumer('$Default', wrong).getEventHubProperties(), (err: Error) => /UnauthorizedError: signature does not match/.test(reasons(err)))
  const registryRead = t.hub.eventHubConnectionString({ policy: 'registryRead' })
  // The token is good, the link to $management is refused: the client gives up after its timeout per try.
  await assert.rejects(consumer('$Default', registryRead, 2000).getPartitionIds(), (err: Error) => /UnauthorizedError: a token with the ServiceConnect right is needed/.test(reasons(err)))
})

test('an on-disk hub restarted: reading from earliest returns the retained events again', async (tt) => {
  const home = mkdtempSync(join(tmpdir(), 'edgemq-eh-'))
  tt.after(() => rmSync(home, { recursive: true, force: true }))
  const first = await startHub({ inMemory: false, home, ports: { mqtts: null, rest: null, amqp: 0 } })
  try {
    await first.createDevice(D1)
    const d = await device(first, first.ports.mqtt as number, D1)
    for (let i = 0; i < 3; i++) await send(d, D1, i)
    await d.endAsync()
  } finally {
    await first.close()
  }
  const second = await startHub({ inMemory: false, home, ports: { mqtts: null, rest: null, amqp: 0 } })
  tt.after(() => second.close())
  const again = second.eventHubConnectionString()
  const c = collectEvents(consumer('$Default', again), 3, { startPosition: earliestEventPosition })
  const got = await c.done
  await c.close()
  assert.deepEqual(got.map((r) => [r.event.sequenceNumber, bodyOf(r).i, r.event.systemProperties?.['iothub-connection-device-id']]), [
    [0, 0, D1],
    [1, 1, D1],
    [2, 2, D1],
  ])
})

test('retention by count (a hub setting): earliest starts at the oldest event kept, sequence numbers go on', async (tt) => {
  const hub = await startHub({ ports: { mqtts: null, rest: null, amqp: 0 }, settings: { eventRetentionCount: 3 } })
  tt.after(() => hub.close())
  await hub.createDevice(D1)
  const d = await device(hub, hub.ports.mqtt as number, D1)
  for (let i = 0; i < 8; i++) await send(d, D1, i)
  await d.endAsync()
  hub.broker.builtin.log.trim()
  const client = consumer('$Default', hub.eventHubConnectionString())
  const p = await client.getPartitionProperties(String(partitionOf(D1, 4)))
  assert.equal(p.beginningSequenceNumber, 5)
  assert.equal(p.lastEnqueuedSequenceNumber, 7)
  const c = collectEvents(client, 3, { startPosition: earliestEventPosition })
  const got = await c.done
  await c.close()
  assert.deepEqual(got.map((r) => [r.event.sequenceNumber, bodyOf(r).i]), [
    [5, 5],
    [6, 6],
    [7, 7],
  ])
})

test('epoch (owner level) receivers: a higher epoch takes the partition, a lower one is refused', async () => {
  const pid = String(partitionOf(D1, 4))
  const mark = t.mark()
  // `low` reads what is there (6 events), then waits for more: it holds the partition.
  const low = collectEvents(consumer(), 100, { startPosition: earliestEventPosition, partitionId: pid, ownerLevel: 1 })
  await t.waitForLog(/"epoch":1,"msg":"Event Hubs reader attached"/, { since: mark })
  const high = collectEvents(consumer(), 6, { startPosition: earliestEventPosition, partitionId: pid, ownerLevel: 2 })
  assert.match(reasons(await low.firstError), /ReceiverDisconnectedError: a receiver with the higher epoch 2 took this partition/)
  assert.equal((await high.done).length, 6)
  const lower = collectEvents(consumer(), 1, { startPosition: earliestEventPosition, partitionId: pid, ownerLevel: 1 })
  assert.match(reasons(await lower.firstError), /epoch 2 holds this partition/)
  await Promise.all([low.close(), high.close(), lower.close()])
})
