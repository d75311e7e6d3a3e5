/**
 * A misbehaving `$upstream` for bridge tests: a TLS MQTT 3.1.1 server (certificate from the
 * project's PKI, for localhost) that accepts every CONNECT, acknowledges every PUBLISH, and
 * answers SUBSCRIBE however `suback` says — e.g. with fewer return codes than filters, which no
 * edgemq or IoT Hub parent does on purpose but a buggy one may. Counts connections and SUBSCRIBEs.
 *
 * mqtt-packet is MQTT.js's own codec (a dependency of `mqtt`).
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type TLSSocket } from 'node:tls'

import mqttPacket from 'mqtt-packet'

import { createInMemoryHubPki } from '../../src/pki/index.js'

export interface FakeParent {
  port: number
  caFile: string
  connections: number
  /** The filters of every SUBSCRIBE received, one array per packet. */
  subscribes: string[][]
  close(): Promise<void>
}

export async function startFakeParent(suback: (filters: string[]) => number[]): Promise<FakeParent> {
  const pki = await createInMemoryHubPki({ hubName: 'fakeparent' })
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-fake-parent-'))
  const caFile = join(dir, 'ca.pem')
  writeFileSync(caFile, pki.caPem)
  const sockets = new Set<TLSSocket>()
  const state = { connections: 0, subscribes: [] as string[][] }
  const server = createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const send = (p: object) => socket.write(mqttPacket.generate(p as mqttPacket.Packet))
    parser.on('packet', (p: mqttPacket.Packet) => {
      if (p.cmd === 'connect') {
        state.connections++
        send({ cmd: 'connack', returnCode: 0, sessionPresent: false })
      } else if (p.cmd === 'subscribe') {
        const filters = p.subscriptions.map((s) => s.topic)
        state.subscribes.push(filters)
        const granted = suback(filters)
        // Written by hand: mqtt-packet refuses to generate a SUBACK without return codes.
        const id = p.messageId ?? 0
        socket.write(Buffer.from([0x90, 2 + granted.length, id >> 8, id & 0xff, ...granted]))
      } else if (p.cmd === 'publish' && p.qos === 1) send({ cmd: 'puback', messageId: p.messageId })
      else if (p.cmd === 'pingreq') send({ cmd: 'pingresp' })
      else if (p.cmd === 'unsubscribe') send({ cmd: 'unsuback', messageId: p.messageId })
    })
    parser.on('error', () => socket.destroy())
    socket.on('data', (d: Buffer) => parser.parse(d))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    caFile,
    get connections() {
      return state.connections
    },
    subscribes: state.subscribes,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
