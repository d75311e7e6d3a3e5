// mqtt-packet's packet class (packet.js), which its parser emits; its own types name no module for it.
declare module 'mqtt-packet/packet.js' {
  export default class Packet {
    cmd: string | null
    retain: boolean
    qos: number
    dup: boolean
    length: number
    topic: string | null
    payload: Buffer | string | null
  }
}
