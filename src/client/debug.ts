/**
 * `-d` output: libmosquitto's packet log lines ("Client <id> sending CONNECT", "Client <id>
 * received PUBLISH (d0, q1, r0, m1, 'x', ... (5 bytes))"), so the seed's debugging advice reads
 * the same. Unlike mosquitto (stdout), edgemq writes them to stderr: stdout carries only messages.
 */
import type { Packet } from 'mqtt'

export function packetDebugLine(id: string, dir: 'sending' | 'received', p: Packet): string[] {
  const c = `Client ${id} ${dir}`
  const rc = (p as { reasonCode?: number }).reasonCode ?? 0
  switch (p.cmd) {
    case 'connect':
      return [`${c} CONNECT`]
    case 'connack':
      return [`${c} CONNACK (${p.reasonCode ?? p.returnCode ?? 0})`]
    case 'publish': {
      const len = typeof p.payload === 'string' ? Buffer.byteLength(p.payload) : p.payload.length
      return [`${c} PUBLISH (d${p.dup ? 1 : 0}, q${p.qos}, r${p.retain ? 1 : 0}, m${p.messageId ?? 0}, '${p.topic}', ... (${len} bytes))`]
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      const name = p.cmd.toUpperCase()
      // libmosquitto's two spellings: received "(Mid: 1, RC:0)" / sending "(m1, rc0)".
      if (dir === 'received') return [p.cmd === 'pubrec' || p.cmd === 'pubrel' ? `${c} ${name} (Mid: ${p.messageId})` : `${c} ${name} (Mid: ${p.messageId}, RC:${rc})`]
      return [p.cmd === 'puback' || p.cmd === 'pubrec' ? `${c} ${name} (m${p.messageId}, rc${rc})` : `${c} ${name} (m${p.messageId})`]
    }
    case 'subscribe':
      return p.subscriptions.map((s) => {
        const options = (s.nl ? 0x04 : 0) | (s.rap ? 0x08 : 0) | ((s.rh ?? 0) << 4)
        return `${c} SUBSCRIBE (Mid: ${p.messageId}, Topic: ${s.topic}, QoS: ${s.qos}, Options: 0x${options.toString(16).padStart(2, '0')})`
      })
    case 'suback':
      return [`${c} SUBACK`]
    case 'unsubscribe':
      return p.unsubscriptions.map((t) => `${c} UNSUBSCRIBE (Mid: ${p.messageId}, Topic: ${t})`)
    case 'unsuback':
      return [`${c} UNSUBACK`]
    case 'pingreq':
      return [`${c} PINGREQ`]
    case 'pingresp':
      return [`${c} PINGRESP`]
    case 'disconnect':
      return [`${c} DISCONNECT${p.reasonCode ? ` (${p.reasonCode})` : ''}`]
    case 'auth':
      return [`${c} AUTH`]
    default:
      return []
  }
}
