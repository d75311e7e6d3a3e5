/**
 * The bench's load generator: a minimal MQTT 3.1.1 client over a raw socket.
 *
 * Why not MQTT.js: on this 2-core machine the generator shares the CPUs with the broker under test,
 * and MQTT.js spent more CPU per message (parsing every PUBLISH into objects, one write and one
 * callback per packet) than the brokers did, so the throughput rows measured the generator: edgemq
 * used less broker CPU per message than mosquitto and still came out slower in some runs. This
 * client writes pre-encoded packets in batches and only frames what it receives (counting PUBLISHes,
 * acknowledging QoS 1 in one write per chunk), so the broker is what limits a row.
 * The same client drives every broker, so the ratios stay side by side.
 */
import { once } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'

import mqttPacket from 'mqtt-packet'

import type { Creds, LoadClient } from './load.js'


const CONNACK = 2
const PUBLISH = 3
const PUBACK = 4
const SUBACK = 9

/** One pre-encoded PUBLISH (`id` only for QoS 1). */
export function publishPacket(topic: string, payload: Buffer, qos: 0 | 1, id?: number): Buffer {
  return mqttPacket.generate({ cmd: 'publish', topic, payload, qos, dup: false, retain: false, ...(qos ? { messageId: id } : {}) } as mqttPacket.IPublishPacket)
}

export class RawClient implements LoadClient {
  private rest: Buffer | undefined
  private nextId = 0
  private waiting: { type: number; resolve: (frame: Buffer) => void } | undefined
  /** performance.now() of the last PUBLISH received (0 when none). */
  lastAt = 0
  /** Called with the number of PUBLISHes in each chunk. */
  onPublishes?: (n: number) => void
  /** Called with the packet ids of the PUBACKs in each chunk. */
  onPubacks?: (ids: number[]) => void
  /** Called with each PUBLISH's payload (where a row needs them: slower). */
  onPayload?: (payload: Buffer) => void

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true)
    socket.on('data', (d: Buffer) => this.onData(d))
    socket.on('error', () => {})
  }

  /** Connects, sends CONNECT, resolves on CONNACK 0 (rejects with the return code otherwise). */
  static async connect(port: number, c: Creds): Promise<RawClient> {
    const socket = netConnect(port, '127.0.0.1')
    await once(socket, 'connect')
    const client = new RawClient(socket)
    const connack = client.next(CONNACK)
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: c.clean ?? true,
        clientId: c.clientId,
        keepalive: 0,
        ...(c.username ? { username: c.username } : {}),
        ...(c.password ? { password: Buffer.from(c.password) } : {}),
      }),
    )
    const frame = await connack
    if (frame[3] !== 0) {
      socket.destroy()
      throw new Error(`${c.clientId}: CONNACK ${frame[3]}`)
    }
    return client
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    const suback = this.next(SUBACK)
    this.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] }))
    const frame = await suback
    if (frame[frame.length - 1] === 0x80) throw new Error(`SUBSCRIBE ${filter} refused`)
  }

  /**
   * Publishes `n` copies of one message keeping `window` in flight: QoS 1 until its PUBACK (packet
   * ids 1…window, each re-sent once acknowledged); QoS 0 until written (batches of `window`).
   */
  publishWindowed(topic: string, payload: Buffer, qos: 0 | 1, n: number, window: number): Promise<void> {
    if (n === 0) return Promise.resolve()
    const w = Math.min(window, n)
    if (qos === 0) {
      const batch = Buffer.concat(Array.from({ length: w }, () => publishPacket(topic, payload, 0)))
      const size = batch.length / w
      return new Promise((resolve, reject) => {
        let sent = 0
        const pump = (err?: Error | null) => {
          if (err) return reject(err)
          if (sent >= n) return resolve()
          const k = Math.min(w, n - sent)
          sent += k
          this.socket.write(k === w ? batch : batch.subarray(0, k * size), pump)
        }
        pump()
      })
    }
    const packets = Array.from({ length: w }, (_, i) => publishPacket(topic, payload, 1, i + 1))
    return new Promise((resolve, reject) => {
      let sent = w
      let acked = 0
      this.onPubacks = (ids) => {
        acked += ids.length
        if (acked >= n) {
          this.onPubacks = undefined
          return resolve()
        }
        const again: Buffer[] = []
        for (const id of ids) {
          if (sent >= n) break
          if (id < 1 || id > w) return reject(new Error(`PUBACK for packet id ${id}, never sent`))
          sent++
          again.push(packets[id - 1])
        }
        if (again.length) this.socket.write(again.length === 1 ? again[0] : Buffer.concat(again))
      }
      this.socket.write(Buffer.concat(packets))
    })
  }

  /** One PUBLISH (QoS 1 ids cycle through 1…65535), not waited for: its PUBACK is ignored. */
  publishOne(topic: string, payload: Buffer, qos: 0 | 1): void {
    this.nextId = (this.nextId % 65535) + 1
    this.socket.write(publishPacket(topic, payload, qos, this.nextId))
  }

  /** Sends DISCONNECT and resolves once the socket closed. */
  async end(): Promise<void> {
    if (this.socket.destroyed) return
    const closed = once(this.socket, 'close')
    this.socket.end(Buffer.from([0xe0, 0x00]))
    await closed
  }

  /** The next frame of `type` (CONNACK, SUBACK). */
  private next(type: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting = { type, resolve }
      this.socket.once('close', () => reject(new Error(`connection closed before packet type ${type}`)))
    })
  }

  private onData(chunk: Buffer): void {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk
    let i = 0
    let publishes = 0
    let toAck: number[] | undefined
    let pubacks: number[] | undefined
    while (i + 2 <= buf.length) {
      let len = 0
      let mul = 1
      let j = i + 1
      let complete = false
      for (; j < buf.length && j < i + 5; j++) {
        len += (buf[j] & 0x7f) * mul
        mul *= 128
        if ((buf[j] & 0x80) === 0) {
          complete = true
          j++
          break
        }
      }
      if (!complete || j + len > buf.length) break
      const type = buf[i] >> 4
      if (type === PUBLISH) {
        publishes++
        const topicLen = buf.readUInt16BE(j)
        const qos = (buf[i] >> 1) & 3
        if (qos > 0) (toAck ??= []).push(buf.readUInt16BE(j + 2 + topicLen))
        if (this.onPayload) this.onPayload(buf.subarray(j + 2 + topicLen + (qos > 0 ? 2 : 0), j + len))
      } else if (type === PUBACK) {
        ;(pubacks ??= []).push(buf.readUInt16BE(j))
      } else if (this.waiting && type === this.waiting.type) {
        const w = this.waiting
        this.waiting = undefined
        w.resolve(buf.subarray(i, j + len))
      }
      i = j + len
    }
    this.rest = i < buf.length ? Buffer.from(buf.subarray(i)) : undefined
    if (toAck) {
      const acks = Buffer.allocUnsafe(4 * toAck.length)
      for (let k = 0; k < toAck.length; k++) {
        acks[4 * k] = 0x40
        acks[4 * k + 1] = 2
        acks.writeUInt16BE(toAck[k], 4 * k + 2)
      }
      this.socket.write(acks)
    }
    if (publishes) {
      this.lastAt = performance.now()
      this.onPublishes?.(publishes)
    }
    if (pubacks) this.onPubacks?.(pubacks)
  }
}

