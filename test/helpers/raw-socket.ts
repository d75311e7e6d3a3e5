/**
 * Raw TCP helpers for hostile-client tests: a socket that sends bytes nobody well-behaved would,
 * reads a CONNACK, or streams a packet body until the broker cuts it off.
 */
import { once } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'

import mqttPacket from 'mqtt-packet'

import { iothubUsername } from './mqtt.js'

export async function rawSocket(port: number): Promise<Socket> {
  const s = netConnect(port, '127.0.0.1')
  s.on('error', () => undefined)
  await once(s, 'connect')
  return s
}

/** A CONNECT packet (MQTT 3.1.1) with the IoT Hub username of `clientId`. */
export function connectPacket(clientId: string, password?: string, extra: Partial<mqttPacket.IConnectPacket> = {}): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive: 60,
    username: iothubUsername(clientId),
    ...(password ? { password: Buffer.from(password) } : {}),
    ...extra,
  })
}

/** Resolves with the CONNACK return code, or -1 when the socket closes without one. */
export function connackOf(s: Socket, timeoutMs = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0)
    const t = setTimeout(() => reject(new Error('neither CONNACK nor close in time')), timeoutMs)
    const done = (code: number) => {
      clearTimeout(t)
      s.off('data', onData)
      resolve(code)
    }
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (got.length >= 4 && got[0] === 0x20) done(got[3])
    }
    s.on('data', onData)
    s.once('close', () => done(-1))
  })
}

export interface BlastResult {
  /** Bytes the socket accepted (handed to the kernel) before the broker closed it. */
  written: number
  closed: boolean
  ms: number
}

/**
 * Sends `header`, then zero-filled 64 KiB chunks (one at a time, so this side never buffers
 * more) until the broker closes the connection or `maxBytes` went out.
 */
export async function blast(s: Socket, header: Buffer, maxBytes: number): Promise<BlastResult> {
  const start = Date.now()
  let closed = s.destroyed
  s.once('close', () => (closed = true))
  const chunk = Buffer.alloc(64 * 1024)
  const write = (b: Buffer) => new Promise<boolean>((resolve) => s.write(b, (err) => resolve(!err)))
  let written = 0
  if (!(await write(header))) return { written, closed: true, ms: Date.now() - start }
  written += header.length
  while (!closed && written < maxBytes) {
    if (!(await write(chunk))) break
    written += chunk.length
  }
  if (!closed) await Promise.race([new Promise((r) => s.once('close', r)), new Promise((r) => setTimeout(r, 200))])
  return { written, closed: closed || s.destroyed, ms: Date.now() - start }
}

/** MQTT's remaining-length varint (7 bits a byte, high bit = more follow). */
export function remainingLength(n: number): Buffer {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return Buffer.from(out)
}

/** A fixed header (type/flags byte + remaining length) claiming `length` bytes follow. */
export function fixedHeader(firstByte: number, length: number): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(length)])
}
