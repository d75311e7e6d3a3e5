/**
 * A packet guard in front of aedes' parser on each connection: it follows the MQTT framing
 * (fixed header, remaining length, body) chunk by chunk without buffering anything, so a packet
 * that claims more than the limit is refused from its first bytes, not after the parser has
 * buffered all of it (mqtt-packet keeps a packet until it is whole). It also answers a CONNECT
 * of an unknown protocol level with CONNACK 0x01, which mqtt-packet would only reject with a
 * closed socket. Since it sees every packet's bounds, it also decodes the whole PUBLISH and
 * PUBACK packets of a connected client itself (publish-codec.ts) and hands the parser the rest.
 */
import type { Client } from 'aedes'

import { authenticated, interceptParserInput, type MqttParser } from './aedes-internals.js'
import { decodeFast, fastCodecStats, fastShape, wholePacketAt, type Frame } from './publish-codec.js'

export type FrameIssue =
  | { kind: 'too-large'; cmd: number; length: number; limit: number }
  | { kind: 'bad-length' }
  | { kind: 'bad-protocol-level'; level: number }

const CONNECT = 1
/** Protocol levels mqtt-packet parses (3.1, 3.1.1, 5); aedes answers 5 with 0x01 itself. */
const KNOWN_LEVELS = new Set([3, 4, 5])

/** The framing state of one byte stream. Nothing of the stream is kept but the first CONNECT's head. */
export class MqttFramer {
  private phase: 'header' | 'length' | 'body' = 'header'
  /** The current packet's first byte, and the first two bytes of its body (bodySeen of them so far). */
  private header = 0
  private bodySeen = 0
  private body0 = 0
  private body1 = 0
  private length = 0
  private multiplier = 1
  private lengthBytes = 0
  private left = 0
  /** Packets whose end has been seen. */
  packets = 0
  /** The first bytes of the first packet's body (enough to read a CONNECT's protocol level). */
  private readonly head: number[] = []

  /** Follows `buf`; `limit(index)` is the largest remaining length allowed for packet number `index`. */
  feed(buf: Buffer, limit: (index: number) => number): FrameIssue | undefined {
    let i = 0
    while (i < buf.length) {
      if (this.phase === 'header') {
        this.header = buf[i++]
        this.bodySeen = 0
        this.length = 0
        this.multiplier = 1
        this.lengthBytes = 0
        this.phase = 'length'
      } else if (this.phase === 'length') {
        const b = buf[i++]
        this.length += (b & 0x7f) * this.multiplier
        this.multiplier *= 128
        this.lengthBytes++
        const max = limit(this.packets)
        // Judged as soon as the bytes so far prove the length is over the limit.
        if (this.length > max) return { kind: 'too-large', cmd: this.header >> 4, length: this.length, limit: max }
        if (b & 0x80) {
          if (this.lengthBytes === 4) return { kind: 'bad-length' }
          continue
        }
        this.left = this.length
        if (this.left === 0) this.endPacket()
        else this.phase = 'body'
      } else {
        const take = Math.min(this.left, buf.length - i)
        if (this.bodySeen === 0) {
          this.body0 = buf[i]
          this.bodySeen = 1
          if (take > 1) {
            this.body1 = buf[i + 1]
            this.bodySeen = 2
          }
        } else if (this.bodySeen === 1) {
          this.body1 = buf[i]
          this.bodySeen = 2
        }
        if (this.packets === 0 && this.header >> 4 === CONNECT && this.head.length < 10) {
          for (let k = 0; k < take && this.head.length < 10; k++) this.head.push(buf[i + k])
          const issue = this.connectIssue()
          if (issue) return issue
        }
        i += take
        this.left -= take
        if (this.left === 0) this.endPacket()
      }
    }
    return undefined
  }

  /** Between packets: nothing of a packet is pending. */
  atBoundary(): boolean {
    return this.phase === 'header'
  }

  /** Bytes still to come of the packet whose body is being read (0 between packets or in a header). */
  bodyLeft(): number {
    return this.phase === 'body' ? this.left : 0
  }

  /**
   * Whether the packet whose body `rest` finishes may be handed to the parser cut off at its end
   * (see parsesAlone): a well-formed PUBLISH or PUBACK, or a packet that parses alone.
   */
  pendingParsesAlone(rest: Buffer): boolean {
    if (this.phase !== 'body') return false
    const { header, length } = this
    if (parsesAlone(header, length)) return true
    const byte = (k: number) => (k < this.bodySeen ? (k === 0 ? this.body0 : this.body1) : rest[k - this.bodySeen])
    return fastShape(header, length, length >= 2 ? (byte(0) << 8) | byte(1) : 0)
  }

  private endPacket(): void {
    this.packets++
    this.phase = 'header'
  }

  /** A CONNECT naming MQTT (or MQIsdp) with a protocol level nobody speaks. */
  private connectIssue(): FrameIssue | undefined {
    const h = this.head
    if (h.length < 2) return undefined
    const nameLength = (h[0] << 8) | h[1]
    if (nameLength !== 4 && nameLength !== 6) return undefined // the parser rejects the name itself
    if (h.length < 3 + nameLength) return undefined
    const level = h[2 + nameLength] & 0x7f // bit 7: bridge mode (mosquitto), as mqtt-packet reads it
    return KNOWN_LEVELS.has(level) ? undefined : { kind: 'bad-protocol-level', level }
  }
}

/** CONNACK with return code 0x01 (unacceptable protocol version), MQTT 3.1.1 §3.2.2.3. */
const CONNACK_BAD_PROTOCOL = Buffer.from([0x20, 0x02, 0x00, 0x01])

export interface PacketGuardOptions {
  /** Largest remaining length before the CONNECT is accepted. */
  preConnect: number
  /** Largest remaining length once it is. */
  connected: number
  onIssue(issue: FrameIssue): void
}

/** decodeWhole's scratch bounds, read into locals before anything is emitted (a handler could parse again). */
const FRAME: Frame = { body: 0, end: 0 }

/**
 * Packets the parser may be handed alone, cut off from the bytes after them: mqtt-packet reads a
 * field past a packet's end when the packet is too short for it (its bounds are the buffer's,
 * not the packet's), so any other packet goes to it together with the rest of its chunk, as
 * before. PINGREQ and DISCONNECT without a body, PUBREC/PUBREL/PUBCOMP with exactly their id.
 */
function parsesAlone(header: number, length: number): boolean {
  if (length === 0) return header === 0xc0 || header === 0xe0
  return length === 2 && (header === 0x50 || header === 0x62 || header === 0x70)
}

/**
 * Goes through the packets of a chunk the framer has already passed, from `at` (a packet
 * boundary): each PUBLISH and PUBACK decoded here (publish-codec.ts) is emitted on the parser as
 * the parser would emit it, other packets are handed to the parser in order, and whatever the
 * fast path cannot vouch for (a packet it does not decode that may not be parsed alone, a
 * packet cut at the chunk's end) goes to the parser with everything after it.
 */
function decodeWhole(buf: Buffer, at: number, parser: MqttParser, parse: (buf: Buffer) => void): void {
  const frame = FRAME
  /** Start of a run of packets for the parser, or -1. */
  let other = -1
  while (at < buf.length) {
    if (!wholePacketAt(buf, at, frame)) break
    const end = frame.end // read before anything is emitted
    const packet = decodeFast(buf, at, frame.body, end)
    if (!packet) {
      if (!parsesAlone(buf[at], end - frame.body)) break
      if (other < 0) other = at
      at = end
      continue
    }
    if (other >= 0) {
      parse(buf.subarray(other, at))
      other = -1
      // Like mqtt-packet, nothing after a packet it failed on is read.
      if (parser.error) return
    }
    fastCodecStats.decoded++
    parser.emit('packet', packet)
    at = end
  }
  if (other >= 0) at = other
  if (at < buf.length) parse(at === 0 ? buf : buf.subarray(at))
}

/** Puts a framer in front of this client's parser; a refused stream is cut and nothing more is parsed. */
export function installPacketGuard(client: Client, opts: PacketGuardOptions): void {
  const framer = new MqttFramer()
  let refused = false
  // Everything up to an accepted CONNECT gets the tight limit, pipelined packets after it included.
  // Not `connected`: aedes sets it after the CONNACK is out, and a client may already be answering.
  const limit = () => (authenticated(client) ? opts.connected : opts.preConnect)
  interceptParserInput(client, (buf, parse, parser) => {
    if (refused) return
    // Where the chunk starts: between packets, or inside the body of a packet begun before.
    const left = framer.bodyLeft()
    const boundary = framer.atBoundary()
    const pendingAlone = left > 0 && left < buf.length && framer.pendingParsesAlone(buf)
    // The whole chunk is framed first: a chunk with a packet over the limit is refused before
    // any of it is parsed.
    const issue = framer.feed(buf, limit)
    if (issue) {
      refused = true
      opts.onIssue(issue)
      const conn = client.conn as NodeJS.WritableStream & { destroy(): void; destroySoon?: () => void }
      if (issue.kind === 'bad-protocol-level') {
        conn.end(CONNACK_BAD_PROTOCOL)
        setTimeout(() => conn.destroy(), 1000).unref()
      } else {
        conn.destroy()
      }
      return
    }
    // Once connected (MQTT 3.1/3.1.1), the whole PUBLISH/PUBACK packets of a chunk are decoded
    // here; a packet begun in an earlier chunk is the parser's to finish first, alone if it can be.
    if (parser.error !== null || parser.settings.protocolVersion === 5 || !authenticated(client)) return void parse(buf)
    if (boundary) return decodeWhole(buf, 0, parser, parse)
    if (!pendingAlone) return void parse(buf)
    parse(buf.subarray(0, left))
    if (parser.error === null) decodeWhole(buf, left, parser, parse)
  })
}
