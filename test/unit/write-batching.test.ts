/**
 * Issue 16: the broker sends the packets a connection gets within one turn of the event loop in
 * one write (broker/write-batching.ts). Driven with mqtt-packet's own writeToStream, which is how
 * aedes writes, into a stream that records each write it hands on (one `_writev` = one syscall on
 * a socket), each packet from its own setImmediate as aedes' deliveries are.
 */
import assert from 'node:assert/strict'
import { Duplex } from 'node:stream'
import { test } from 'node:test'

import mqttPacket from 'mqtt-packet'

import { batchWrites } from '../../src/broker/write-batching.js'

/** A duplex that records how many packets each write to "the wire" carried. */
function wire(highWaterMark = 16 * 1024): { stream: Duplex; writes: number[] } {
  const writes: number[] = []
  const count = (chunks: Buffer[]) => Buffer.concat(chunks).filter((b) => b === 0x30).length // PUBLISH QoS 0 first bytes
  const stream = new Duplex({
    writableHighWaterMark: highWaterMark,
    read() {},
    writev(chunks, cb) {
      writes.push(count(chunks.map((c) => c.chunk as Buffer)))
      cb()
    },
    write(chunk: Buffer, _enc, cb) {
      writes.push(count([chunk]))
      cb()
    },
  })
  return { stream, writes }
}

const publish = (i: number, bytes = 4) => ({ cmd: 'publish' as const, topic: 't', payload: Buffer.alloc(bytes, 0x61 + (i % 20)), qos: 0 as const, retain: false, dup: false })
const immediate = () => new Promise<void>((r) => setImmediate(r))

/** Writes `n` packets, each from its own setImmediate in the same turn (as aedes delivers). */
function deliver(stream: Duplex, n: number, bytes?: number): Promise<void> {
  return new Promise((resolve) => {
    for (let i = 0; i < n; i++) setImmediate(() => (mqttPacket.writeToStream(publish(i, bytes), stream), i === n - 1 && resolve()))
  })
}

test('a lone packet goes out at once; the rest of a busy turn goes out in one write at its end', async () => {
  const { stream, writes } = wire()
  batchWrites(stream)

  await deliver(stream, 1)
  await new Promise((r) => process.nextTick(r))
  assert.deepEqual(writes, [1], 'the first packet of a turn is not held')

  await immediate()
  await immediate()
  writes.length = 0
  await deliver(stream, 10)
  assert.deepEqual(writes, [1], 'nine packets held while the turn lasts')
  await immediate()
  await immediate()
  assert.deepEqual(writes, [1, 9], 'then one write for all of them')
})

test('a turn never holds more than half the high-water mark: the stream is let go and held again', async () => {
  const { stream, writes } = wire(1024)
  batchWrites(stream)
  await deliver(stream, 40, 100) // ~105 bytes each: ~4.9 packets fill 512 bytes
  await immediate()
  await immediate()
  assert.equal(writes.reduce((a, b) => a + b, 0), 40, 'every packet written')
  assert.ok(writes.length >= 6, `let go several times within the turn (writes: ${writes.join(',')})`)
  assert.ok(Math.max(...writes) <= 6, `no write carries much more than 512 bytes (writes: ${writes.join(',')})`)
  assert.equal(stream.writableLength, 0)
})
