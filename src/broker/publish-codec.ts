/**
 * The broker's two hottest packets, PUBLISH and PUBACK, decoded and encoded without mqtt-packet's
 * general machinery (issue 16). mqtt-packet parses every packet through a BufferList and a state
 * machine that makes a dozen debug() calls, and writes a PUBLISH as five or six separate stream
 * writes; in the fan-in profile that was about a third of the broker's CPU per message.
 *
 * Both directions give exactly what mqtt-packet gives: the same packet objects (its own Packet
 * class, the same fields) and the same bytes. test/unit/publish-codec.test.ts compares them over
 * random packets. Anything the fast path is not sure of (MQTT 5, a malformed or truncated body,
 * a topic that is not a string…) is left to mqtt-packet, errors included.
 * Only MQTT 3.1 and 3.1.1: aedes speaks nothing else, and writes without protocol options.
 */
import type { Writable } from 'node:stream'

import Packet from 'mqtt-packet/packet.js'

/** Packets the fast path took (tests check that aedes' reads and writes still come this way). */
export const fastCodecStats = { decoded: 0, written: 0 }

const PUBLISH = 3
const PUBACK = 4

/** A packet as mqtt-packet's parser emits it (class Packet, plus messageId when there is one). */
export type ParsedPacket = Packet & { messageId?: number }

/**
 * Whether decodeFast takes a packet with this first byte and remaining length: a PUBACK of MQTT
 * 3.1.1 (flags 0, just the id), or a PUBLISH (QoS 0–2) whose topic (`topicLength`, its body's
 * first two bytes) and message id fit in it. mqtt-packet reads a field missing from a short
 * packet out of the bytes after it; those are left to it. The packet guard asks this of a
 * packet whose start came in an earlier chunk.
 */
export function fastShape(header: number, length: number, topicLength: number): boolean {
  if (header >> 4 === PUBACK) return header === 0x40 && length === 2
  if (header >> 4 !== PUBLISH) return false
  const qos = (header >> 1) & 3
  return qos !== 3 && length >= 2 && 2 + topicLength + (qos > 0 ? 2 : 0) <= length
}

/**
 * Decodes one whole packet: `buf[start]` is its fixed header, its body is `buf[body..end)`.
 * Returns undefined for anything but a well-formed MQTT 3.1.1 PUBLISH or PUBACK (fastShape).
 */
export function decodeFast(buf: Buffer, start: number, body: number, end: number): ParsedPacket | undefined {
  const header = buf[start]
  const length = end - body
  const topicLength = length >= 2 ? (buf[body] << 8) | buf[body + 1] : 0
  if (!fastShape(header, length, topicLength)) return undefined
  const p: ParsedPacket = new Packet()
  if (header >> 4 === PUBACK) {
    p.cmd = 'puback'
    p.length = 2
    p.messageId = topicLength // the body is just the id
    return p
  }
  const qos = (header >> 1) & 3
  const topicEnd = body + 2 + topicLength
  const payloadStart = qos > 0 ? topicEnd + 2 : topicEnd
  p.cmd = 'publish'
  p.retain = (header & 1) !== 0
  p.qos = qos
  p.dup = (header & 8) !== 0
  p.length = length
  p.topic = buf.toString('utf8', body + 2, topicEnd)
  // A view into the chunk read from the socket, as mqtt-packet's BufferList slice gives.
  p.payload = payloadStart === end ? Buffer.alloc(0) : buf.subarray(payloadStart, end)
  if (qos > 0) p.messageId = (buf[topicEnd] << 8) | buf[topicEnd + 1]
  return p
}

/** Where a packet's body starts and where the packet ends. */
export interface Frame {
  body: number
  end: number
}

/**
 * The bounds of the packet at `buf[start]`, if all of it is in `buf`; written into `into` when
 * given (the packet guard reuses one per connection: no allocation per packet).
 */
export function wholePacketAt(buf: Buffer, start: number, into?: Frame): Frame | undefined {
  let length = 0
  let multiplier = 1
  let i = start + 1
  for (let n = 0; n < 4; n++) {
    if (i >= buf.length) return undefined
    const b = buf[i++]
    length += (b & 0x7f) * multiplier
    if ((b & 0x80) === 0) {
      const end = i + length
      if (end > buf.length) return undefined
      if (!into) return { body: i, end }
      into.body = i
      into.end = end
      return into
    }
    multiplier *= 128
  }
  return undefined // a fifth length byte: malformed, the packet guard says so
}

interface OutgoingPacket {
  cmd?: string
  qos?: number
  dup?: boolean
  retain?: boolean
  topic?: unknown
  payload?: unknown
  messageId?: unknown
}

/** Above this a payload is written as its own chunk (writev) rather than copied. */
const COPY_LIMIT = 2048

function uncork(stream: Writable): void {
  stream.uncork()
}

/** As mqtt-packet does for every packet: corked until the next tick, so its writes go out together. */
export function corkForTick(stream: Writable): void {
  stream.cork()
  process.nextTick(uncork, stream)
}

/** A packet identifier mqtt-packet can write (its number cache covers 0–65535). */
function isPacketId(id: unknown): id is number {
  return typeof id === 'number' && id >= 0 && id <= 0xffff && id === Math.floor(id)
}

function remainingLengthBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4
}

/**
 * Writes `packet` as mqtt-packet's writeToStream(packet, stream) would (MQTT 3.1.1: same bytes,
 * same cork for the tick, same return value) when it is a PUBLISH or PUBACK it can vouch for;
 * returns undefined, having written nothing, for anything else.
 */
export function writeFast(packet: OutgoingPacket, stream: Writable): boolean | undefined {
  if (packet.cmd === 'puback') {
    const id = packet.messageId
    if (!isPacketId(id)) return undefined
    fastCodecStats.written++
    corkForTick(stream)
    stream.write(Buffer.from([0x40, 2, id >> 8, id & 0xff]))
    return true // mqtt-packet's confirmation() answers true whatever the stream said
  }
  if (packet.cmd !== 'publish') return undefined
  return writePublish(stream, packet.topic, packet.payload || EMPTY_PAYLOAD, packet.qos || 0, packet.messageId, !!packet.dup, !!packet.retain)
}

/**
 * writeFast() for a PUBLISH given by its fields (aedes' QoS 0 delivery writes without a packet
 * object). `corked`: the caller corked the stream for this tick already (a batch of deliveries).
 */
export function writePublish(stream: Writable, topic: unknown, payload: unknown, qos: number, id: unknown, dup: boolean, retain: boolean, corked = false): boolean | undefined {
  if (typeof topic !== 'string' || (qos !== 0 && qos !== 1 && qos !== 2)) return undefined
  if (qos > 0 && !isPacketId(id)) return undefined
  const isBuffer = Buffer.isBuffer(payload)
  if (!isBuffer && typeof payload !== 'string') return undefined
  const topicLength = Buffer.byteLength(topic)
  if (topicLength > 0xffff) return undefined
  const payloadLength = isBuffer ? payload.length : Buffer.byteLength(payload as string)
  const length = 2 + topicLength + (qos > 0 ? 2 : 0) + payloadLength
  if (length > 268_435_455) return undefined
  const inline = payloadLength <= COPY_LIMIT
  const lengthBytes = remainingLengthBytes(length)
  const out = Buffer.allocUnsafe(1 + lengthBytes + length - (inline ? 0 : payloadLength))
  out[0] = 0x30 | (qos << 1) | (dup ? 8 : 0) | (retain ? 1 : 0)
  let o = 1
  let n = length
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out[o++] = b
  } while (n > 0)
  out[o++] = topicLength >> 8
  out[o++] = topicLength & 0xff
  o += out.write(topic, o, topicLength === topic.length ? 'latin1' : 'utf8') // ASCII: the cheaper encoder, same bytes
  if (qos > 0) {
    out[o++] = (id as number) >> 8
    out[o++] = (id as number) & 0xff
  }
  fastCodecStats.written++
  if (!corked) corkForTick(stream)
  if (!inline) {
    stream.write(out)
    return stream.write(payload)
  }
  if (isBuffer) payload.copy(out, o)
  else out.write(payload as string, o, 'utf8')
  return stream.write(out)
}

/** The payload of a PUBLISH that has none (aedes-packet and mqtt-packet default to an empty buffer). */
export const EMPTY_PAYLOAD = Buffer.alloc(0)
