/**
 * MQTT over WebSockets, as IoT Hub serves it: `wss://<host>:443/$iothub/websocket` with the `mqtt`
 * subprotocol (what the device SDKs' MqttWs transports dial), on any HTTP(S) server that also serves
 * other things (the REST API). Each accepted socket becomes a byte stream handed to the broker, which
 * then applies exactly the same authentication and policy as on 1883/8883.
 *
 * The WebSocket framing is the `ws` library's; nothing here parses frames.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { createWebSocketStream, WebSocketServer } from 'ws'

/** IoT Hub's path. `/mqtt` is MQTT.js's and most brokers' default, accepted for local browser code. */
export const MQTT_WS_PATHS: readonly string[] = ['/$iothub/websocket', '/mqtt']

/** MQTT 3.1.1 names its subprotocol `mqtt`; MQTT 3.1 clients offer `mqttv3.1`. */
const SUBPROTOCOLS = new Set(['mqtt', 'mqttv3.1'])

/** What the broker's hooks read off a connection: the peer address and, over TLS, its certificate. */
export type MqttWsStream = Duplex & Pick<TLSSocket, 'remoteAddress' | 'remotePort'> & Partial<Pick<TLSSocket, 'getPeerCertificate'>>

export interface MqttWebSocketOptions {
  /** Called with each accepted connection (e.g. `(s) => aedes.handle(s)`). */
  onStream(stream: MqttWsStream): void
  /** The largest WebSocket message accepted; MQTT packets larger than this never arrive whole. */
  maxPayload: number
  /** Called for refused upgrades (wrong path, bad handshake), for the debug log. */
  onRefused?(reason: string, req: IncomingMessage): void
  /**
   * Offered every upgrade request first; returns true when it took it. Other protocols share the
   * port and even the path (the service SDK's AMQP over WebSockets dials `/$iothub/websocket` with
   * subprotocol AMQPWSB10).
   */
  otherUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): boolean
}

/**
 * Serve MQTT over WebSockets on `server`'s upgrade requests to the MQTT paths; other upgrade requests
 * get 404 and are closed. Returns a function that closes every WebSocket (for shutdown).
 */
export function serveMqttOverWebSocket(server: HttpServer | HttpsServer, opts: MqttWebSocketOptions): () => void {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayload,
    // A client that offers no subprotocol is let in (some browser libraries omit it); one that offers
    // only others was refused with 400 before the upgrade.
    handleProtocols: (offered) => [...offered].find((p) => SUBPROTOCOLS.has(p)) ?? false,
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (opts.otherUpgrade?.(req, socket, head)) return
    const path = (req.url ?? '/').split('?')[0]
    if (!MQTT_WS_PATHS.includes(path)) {
      opts.onRefused?.(`no WebSocket endpoint at ${path}`, req)
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    const offered = req.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim())
    if (offered && !offered.some((p) => SUBPROTOCOLS.has(p))) {
      opts.onRefused?.(`subprotocol ${offered.join(', ')} is not mqtt`, req)
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    socket.on('error', () => socket.destroy())
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws) as MqttWsStream
      const raw = req.socket as Partial<TLSSocket>
      // The hooks log the address and, for X.509 over wss, read the client certificate off the connection.
      Object.assign(stream, {
        remoteAddress: raw.remoteAddress,
        remotePort: raw.remotePort,
        getPeerCertificate: typeof raw.getPeerCertificate === 'function' ? raw.getPeerCertificate.bind(raw) : undefined,
      })
      stream.on('error', () => stream.destroy())
      opts.onStream(stream)
    })
  })
  return () => {
    for (const ws of wss.clients) ws.terminate()
    wss.close()
  }
}
