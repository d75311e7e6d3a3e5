/**
 * One write syscall per connection per turn of the event loop instead of one per MQTT packet
 * (issue 16: `writev` was the largest single cost of fan-in and QoS 0 1→1 in the profiles).
 * mqtt-packet corks the stream for each packet it writes and uncorks it on the next tick, and
 * aedes writes every delivery from its own setImmediate, so each packet became its own syscall.
 *
 * Here the first packet a connection gets in a turn goes out as before (no added latency for a
 * lone message, a CONNACK, a PUBACK); from the second packet in the same turn on, the stream
 * stays corked until the end of the turn, and then everything held goes out in one write.
 * mqtt-packet's own cork/uncork pairs nest inside ours (a stream counts its corks).
 */
import type { Duplex } from 'node:stream'

interface Batched {
  stream: Duplex
  /** The turn in which this stream last got a packet. */
  turn: number
  /** Corked by us, waiting for the end of the turn. */
  held: boolean
}

/** Streams corked by us in this turn. */
let held: Batched[] = []
let turn = 0
let scheduled = false

/** The end of a turn: release every held stream (one write each) and start the next turn. */
function endTurn(): void {
  scheduled = false
  turn++
  const streams = held
  held = []
  for (const st of streams) {
    // A stream let go early (and maybe held again) is listed once per hold: uncork it once.
    if (!st.held) continue
    st.held = false
    st.stream.uncork()
  }
}

/** Makes `stream` (an MQTT connection) batch the packets written to it within one turn. */
export function batchWrites(stream: Duplex): void {
  if (typeof stream.cork !== 'function') return
  const cork = stream.cork.bind(stream)
  const st: Batched = { stream, turn: -1, held: false }
  const flushAt = stream.writableHighWaterMark / 2
  stream.cork = () => {
    // mqtt-packet calls cork() once at the start of every packet.
    if (st.turn !== turn) {
      st.turn = turn
    } else if (!st.held) {
      st.held = true
      cork()
      held.push(st)
    } else if (stream.writableLength >= flushAt) {
      // Held enough for one write: let go now (mqtt-packet's uncork on the next tick sends it),
      // so a busy turn never holds more than this, and aedes never sees a full buffer because
      // of us (write() answers false past the high-water mark, and aedes then waits for 'drain').
      st.held = false
      stream.uncork()
    }
    if (!scheduled) {
      scheduled = true
      setImmediate(endTurn)
    }
    cork()
  }
}
