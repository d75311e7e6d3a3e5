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
import { decodeFast, fastCodecStats, wholePacketAt } from './publish-codec.js'

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
  private cmd = 0
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
        this.cmd = buf[i++] >> 4
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
        if (this.length > max) return { kind: 'too-large', cmd: this.cmd, length: this.length, limit: max }
        if (b & 0x80) {
          if (this.lengthBytes === 4) return { kind: 'bad-length' }
          continue
        }
        this.left = this.length
        if (this.left === 0) this.endPacket()
        else this.phase = 'body'
      } else {
        const take = Math.min(this.left, buf.length - i)
        if (this.packets === 0 && this.cmd === CONNECT && this.head.length < 10) {
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

  /** Counts whole packets that went past without feed() (packet-guard's fast path). */
  skipWhole(count: number): void {
    this.packets += count
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

/**
 * Takes the whole packets at the front of `buf`: PUBLISH and PUBACK decoded here and emitted on
 * the parser as it would emit them, every other packet handed to the parser, in order. Stops at
 * the first packet that is not all in `buf` or is over `limit` (the framer then takes over).
 * Returns how many bytes were taken, or -1 when the parser failed on one of them.
 */
function decodeWhole(buf: Buffer, framer: MqttFramer, parser: MqttParser, parse: (buf: Buffer) => void, limit: number): number {
  let at = 0
  /** Start of a run of packets for the parser, or -1. */
  let other = -1
  while (at < buf.length) {
    const whole = wholePacketAt(buf, at)
    if (!whole || whole.end - whole.body > limit) break
    const packet = decodeFast(buf, at, whole.body, whole.end)
    if (packet) {
      if (other >= 0) {
        parse(buf.subarray(other, at))
        other = -1
        if (parser.error) return -1
      }
      fastCodecStats.decoded++
      parser.emit('packet', packet)
    } else if (other < 0) {
      other = at
    }
    framer.skipWhole(1)
    at = whole.end
  }
  if (other >= 0) {
    parse(buf.subarray(other, at))
    if (parser.error) return -1
  }
  return at
}

/** Puts a framer in front of this client's parser; a refused stream is cut and nothing more is parsed. */
export function installPacketGuard(client: Client, opts: PacketGuardOptions): void {
  const framer = new MqttFramer()
  let refused = false
  // Everything up to an accepted CONNECT gets the tight limit, pipelined packets after it included.
  // Not `connected`: aedes sets it after the CONNACK is out, and a client may already be answering.
  const limit = () => (authenticated(client) ? opts.connected : opts.preConnect)
  /** The framer, then the parser, see `buf`; false once the stream is refused. */
  const guarded = (buf: Buffer, parse: (buf: Buffer) => void): boolean => {
    const issue = framer.feed(buf, limit)
    if (!issue) {
      parse(buf)
      return true
    }
    refused = true
    opts.onIssue(issue)
    const conn = client.conn as NodeJS.WritableStream & { destroy(): void; destroySoon?: () => void }
    if (issue.kind === 'bad-protocol-level') {
      conn.end(CONNACK_BAD_PROTOCOL)
      setTimeout(() => conn.destroy(), 1000).unref()
    } else {
      conn.destroy()
    }
    return false
  }
  interceptParserInput(client, (chunk, parse, parser) => {
    if (refused) return
    let buf = chunk
    // Once connected, whole PUBLISH/PUBACK packets are decoded here (publish-codec.ts) and all
    // else goes to the parser, in order. A packet begun in an earlier chunk is the parser's to
    // finish; the fast path takes over after it.
    if (parser.error === null && parser.settings.protocolVersion !== 5 && authenticated(client)) {
      const left = framer.bodyLeft()
      if (left > 0 && left < buf.length) {
        if (!guarded(buf.subarray(0, left), parse) || parser.error) return
        buf = buf.subarray(left)
      }
      if (framer.atBoundary()) {
        const done = decodeWhole(buf, framer, parser, parse, opts.connected)
        if (done < 0) return // the parser failed on a packet: like mqtt-packet, nothing after it is read
        if (done === buf.length) return
        buf = buf.subarray(done)
      }
    }
    guarded(buf, parse)
  })
}
