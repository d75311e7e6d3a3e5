/**
 * The hub's AMQP 1.0 endpoint, as IoT Hub serves it to the service SDKs: `amqps` (5671, TLS with the
 * hub certificate), optionally plain `amqp` (5672, for emulator-style clients), and AMQP over
 * WebSockets (subprotocol `AMQPWSB10`) on the HTTPS port's upgrade requests. One rhea container per
 * hub; rhea does all the AMQP framing and encoding, nothing here parses frames.
 *
 * Authentication is IoT Hub's claims-based security: SASL ANONYMOUS (or MSSBCBS, or no SASL layer),
 * then a `put-token` request to the `$cbs` node carrying a service SAS token. `verifyToken` (given by
 * the hub: broker/service-auth.ts verifyAmqpToken) checks it — `sr` on the hub's host name or the one
 * the peer opened with (any scheme, port and path: `sb://host:5671/<entity>`), key as IoT Hub's SDKs
 * or Event Hubs clients use it; the rights of the policy that signed it are kept on the connection
 * until the token expires, and every later link is checked against them.
 *
 * ROUTING API (other features serve their addresses on this same listener):
 *
 *   const amqp = broker.amqp                        // always there; it listens on the ports asked for
 *   const off = amqp.route({
 *     name: 'c2d',                                  // for logs
 *     matches: (address) => address === '/messages/devicebound',
 *     right: 'ServiceConnect',                      // needed by every link to it (absent = none)
 *     onReceiver(link, ctx) { … },                  // the peer SENDS to `address` (link target)
 *     onSender(link, ctx) { … },                    // the peer RECEIVES from `address` (link source)
 *   })
 *
 * - The first route (in registration order) whose `matches` accepts the address serves the link; a
 *   link no route serves (or whose side the route lacks) is detached with `amqp:not-found`, and one
 *   whose connection holds no valid token with the route's right with `amqp:unauthorized-access`.
 * - An accepted link's source and target echo the peer's (filters included); the attach is written
 *   before the handler runs (so it may send at once), hence a handler cannot change them.
 * - Receivers (peer → hub) start with NO credit and never auto-accept: the route grants credit
 *   (`link.add_credit(n)`, `ctx.grantCredit(link)` gives the usual window) and settles each delivery
 *   itself (`delivery.accept()` / `delivery.reject({ condition, description })`), typically adding one
 *   credit per settled delivery. That is what bounds what a peer can have in flight.
 * - `ctx.has(right)` re-checks the rights at any later time (tokens expire; a route that streams for
 *   long may detach with `ctx.unauthorized(link)`).
 * - Handlers run synchronously inside rhea's frame processing: do async work after returning.
 *
 * Limits: connections past `maxConnections` are closed on accept; frames larger than `maxFrameSize`, messages larger than `maxMessageSize` and more than
 * 256 links + sessions close the connection (`amqp:frame-size-too-small`,
 * `amqp:link:message-size-exceeded`, `amqp:resource-limit-exceeded`); garbage on the socket closes
 * it; nothing a peer sends throws out of here.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'

import rhea, { type AmqpError, type Connection, type Container, type EventContext, type Message, type Receiver, type Sender } from 'rhea'
import type { Logger } from 'pino'
import { createWebSocketStream, WebSocketServer } from 'ws'

import { grants, type ServiceRight } from '../registry/rights.js'

/** What a put-token grants: the policy's rights until `expiresAt` (unix seconds). */
export interface AmqpGrant {
  rights: readonly string[]
  expiresAt: number
}

/** Given to route handlers with each link. */
export interface AmqpLinkContext {
  /** The link's address (source for onSender, target for onReceiver). */
  readonly address: string
  readonly connection: Connection
  /** The rights of every unexpired token put on this connection. */
  rights(): readonly string[]
  has(right: ServiceRight): boolean
  /** Adds credit up to the listener's window (receivers start with none). */
  grantCredit(link: Receiver): void
  /** That window: the most a route needs to hold unsettled per link. */
  readonly creditWindow: number
  /** Detaches `link` with amqp:unauthorized-access. */
  unauthorized(link: Sender | Receiver, description?: string): void
  readonly log: Logger
}

export interface AmqpRoute {
  name: string
  matches(address: string): boolean
  right?: ServiceRight
  onSender?(link: Sender, ctx: AmqpLinkContext): void
  onReceiver?(link: Receiver, ctx: AmqpLinkContext): void
}

export interface AmqpListenerOptions {
  /** Container id (shown to peers in the open frame): the hub's host name. */
  id: string
  /**
   * Checks a CBS token for `audience` on a connection reached as `hostname` (the open frame's);
   * throws (any Error; its message is the status description) when refused.
   */
  verifyToken(token: string, audience: string, hostname: string | undefined): AmqpGrant
  log: Logger
  /** Largest frame accepted (and advertised). Default 64 KiB. */
  maxFrameSize?: number
  /** Largest message accepted on a receiver link. */
  maxMessageSize: number
  /** Credit given to a receiver at a time (grantCredit). Default 50. */
  creditWindow?: number
  /** Connections at once (TCP, TLS and WebSocket together); more are closed on accept. Default 1000. */
  maxConnections?: number
  /** Close connections idle for longer (ms; AMQP idle-time-out, heartbeats keep them). Default 240 s as IoT Hub. */
  idleTimeoutMs?: number
}

/** The subprotocol AMQP over WebSockets uses (Azure SDKs: `AMQPWSB10`). */
export const AMQP_WS_SUBPROTOCOL = 'AMQPWSB10'
/** The Service Bus / Event Hubs path; the IoT Hub service SDK's AmqpWs dials `/$iothub/websocket` with the same subprotocol. */
export const AMQP_WS_PATHS: readonly string[] = ['/$servicebus/websocket', '/$iothub/websocket']

const CBS_ADDRESS = '$cbs'
/** Sessions + links one connection may hold (the SDKs use a handful). */
const MAX_LINKS = 256
const CBS_TOKEN_TYPES = new Set(['servicebus.windows.net:sastoken', 'azure-devices.net:sastoken'])

/** rhea's connection fields this file reads that its typings leave out. */
interface RheaConnectionInternals {
  /** Size of the frame rhea is collecting (set from the frame header before the body arrives). */
  frame_size?: number
  local_channel_map?: Record<string, { links?: Record<string, { _incomplete?: { frames?: Buffer[] } }> }>
  accept(socket: Duplex): Connection
}

interface ConnectionState {
  grants: AmqpGrant[]
}

/** Whether an HTTP upgrade request is AMQP over WebSockets (offers AMQPWSB10 on an AMQP path). */
export function isAmqpUpgrade(req: IncomingMessage): boolean {
  const path = (req.url ?? '/').split('?')[0]
  const offered = req.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim()) ?? []
  return AMQP_WS_PATHS.includes(path) && offered.includes(AMQP_WS_SUBPROTOCOL)
}

export class AmqpListener {
  readonly container: Container
  private readonly routes: AmqpRoute[] = []
  private readonly state = new WeakMap<Connection, ConnectionState>()
  private readonly sockets = new Set<Duplex>()
  private readonly wss: WebSocketServer
  private readonly maxFrameSize: number
  private readonly creditWindow: number
  private readonly log: Logger
  private closed = false
  /** Connections closed for breaking a limit or sending garbage. */
  refused = 0

  constructor(private readonly opts: AmqpListenerOptions) {
    this.log = opts.log
    this.maxFrameSize = opts.maxFrameSize ?? 64 * 1024
    this.creditWindow = opts.creditWindow ?? 50
    this.container = rhea.create_container({ id: opts.id })
    Object.assign(this.container.options, {
      container_id: opts.id,
      max_frame_size: this.maxFrameSize,
      idle_time_out: opts.idleTimeoutMs ?? 240_000,
      // Server-side receivers: no credit, no auto-accept (see the header); routes settle.
      receiver_options: { credit_window: 0, autoaccept: false, max_message_size: opts.maxMessageSize },
      sender_options: { autosettle: true },
    })
    const mechs = this.container.sasl_server_mechanisms as Record<string, unknown> & { enable_anonymous(): void }
    mechs.enable_anonymous()
    // MSSBCBS: "authentication follows on $cbs" (Event Hubs / Service Bus clients); accepted like ANONYMOUS.
    mechs.MSSBCBS = () => ({ outcome: undefined as boolean | undefined, username: 'cbs', start(this: { outcome?: boolean }) { this.outcome = true } })
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.maxFrameSize * 2, handleProtocols: () => AMQP_WS_SUBPROTOCOL })
    this.wireContainer()
  }

  /** Serve addresses; returns a function that removes the route again. */
  route(r: AmqpRoute): () => void {
    this.routes.push(r)
    return () => {
      const i = this.routes.indexOf(r)
      if (i >= 0) this.routes.splice(i, 1)
    }
  }

  /** Hands an accepted TCP or TLS socket (or any byte stream) to AMQP. */
  accept(socket: Duplex): void {
    if (this.closed || this.sockets.size >= (this.opts.maxConnections ?? 1000)) {
      if (!this.closed) {
        this.refused++
        this.log.info({ connections: this.sockets.size }, 'AMQP connection refused: too many connections')
      }
      socket.destroy()
      return
    }
    this.sockets.add(socket)
    socket.on('close', () => {
      this.sockets.delete(socket)
      this.log.debug({ connections: this.sockets.size }, 'AMQP socket closed')
    })
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'AMQP socket error'))
    // rhea only ends its side (after a close, or on a protocol error); a peer that never ends
    // its own would hold the socket open: once everything is written, it goes.
    socket.on('finish', () => socket.destroy())
    const conn = (this.container as unknown as { create_connection(o: object): RheaConnectionInternals }).create_connection({}).accept(socket)
    const internals = conn as unknown as RheaConnectionInternals
    // rhea notices only 'end' and 'error': a socket destroyed here (close(), a limit) would leave the
    // connection 'open' with its heartbeat timer running (and the process alive) for up to 30 s.
    socket.on('close', () => (conn as unknown as { _disconnected?(): void })._disconnected?.())
    this.state.set(conn, { grants: [] })
    // After rhea has read each chunk: how much it holds for one frame or one unfinished message.
    socket.on('data', () => {
      const refused = this.overLimit(internals)
      if (!refused) return
      this.refused++
      this.log.info({ reason: refused.description }, 'AMQP connection closed')
      conn.close(refused)
      socket.destroy()
    })
  }

  /** Takes an HTTP upgrade request for AMQP over WebSockets (see isAmqpUpgrade). */
  acceptUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', () => stream.destroy())
      this.accept(stream)
    })
  }

  close(): void {
    this.closed = true
    for (const ws of this.wss.clients) ws.terminate()
    this.wss.close()
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  private overLimit(c: RheaConnectionInternals): AmqpError | undefined {
    if ((c.frame_size ?? 0) > this.maxFrameSize) {
      return { condition: 'amqp:frame-size-too-small', description: `frame of ${c.frame_size} bytes is larger than the maximum of ${this.maxFrameSize}` }
    }
    let pending = 0
    for (const session of Object.values(c.local_channel_map ?? {})) {
      for (const link of Object.values(session.links ?? {})) for (const f of link._incomplete?.frames ?? []) pending += f.length
    }
    if (pending > this.opts.maxMessageSize) {
      return { condition: 'amqp:link:message-size-exceeded', description: `message larger than the maximum of ${this.opts.maxMessageSize} bytes` }
    }
    return undefined
  }

  /** Links (and so sessions) a peer holds open on one connection: each costs memory here. */
  private linkCount(conn: Connection): number {
    let n = 0
    for (const session of Object.values((conn as unknown as RheaConnectionInternals).local_channel_map ?? {})) n += 1 + Object.keys(session.links ?? {}).length
    return n
  }

  private rightsOf(conn: Connection): readonly string[] {
    const s = this.state.get(conn)
    if (!s) return []
    const now = Date.now() / 1000
    s.grants = s.grants.filter((g) => g.expiresAt > now)
    return [...new Set(s.grants.flatMap((g) => g.rights))]
  }

  private contextOf(conn: Connection, address: string): AmqpLinkContext {
    return {
      address,
      connection: conn,
      rights: () => this.rightsOf(conn),
      has: (right) => grants(this.rightsOf(conn), right),
      creditWindow: this.creditWindow,
      grantCredit: (link) => link.add_credit(Math.max(0, this.creditWindow - (link as unknown as { credit: number }).credit)),
      unauthorized: (link, description) => link.close({ condition: 'amqp:unauthorized-access', description: description ?? 'the connection holds no valid token with the right this address needs' }),
      log: this.log,
    }
  }

  private wireContainer(): void {
    const c = this.container
    // rhea reports bad input as 'protocol_error' and 'error' (an unhandled 'error' would throw) and
    // logs to the console when nobody listens: every connection-level event is handled here.
    // Both pass an Error (rhea's ProtocolError, or what a connection's read or write threw).
    c.on('protocol_error', (err: Error) => {
      this.refused++
      this.log.info({ reason: err?.message }, 'AMQP connection closed: protocol error')
    })
    c.on('error', (err: Error) => this.log.info({ reason: err?.message ?? String(err) }, 'AMQP connection error'))
    c.on('disconnected', (ctx: EventContext) => this.log.debug({ container: ctx.connection?.container_id }, 'AMQP connection ended'))
    c.on('connection_open', (ctx: EventContext) => this.log.info({ container: ctx.connection.container_id, hostname: ctx.connection.hostname }, 'AMQP connection opened'))
    c.on('connection_error', () => undefined)
    c.on('session_error', () => undefined)
    c.on('sender_error', () => undefined)
    c.on('receiver_error', () => undefined)
    c.on('settled', () => undefined)
    c.on('sender_open', (ctx: EventContext) => this.onLink(ctx.connection, ctx.sender as Sender, 'sender'))
    c.on('receiver_open', (ctx: EventContext) => this.onLink(ctx.connection, ctx.receiver as Receiver, 'receiver'))
    c.on('message', (ctx: EventContext) => {
      // A receiver whose route did not take its messages (should not happen): refuse, never hold.
      ctx.delivery?.reject({ condition: 'amqp:not-implemented', description: 'no handler for this link' })
    })
  }

  private onLink(conn: Connection, link: Sender | Receiver, role: 'sender' | 'receiver'): void {
    const open = this.linkCount(conn)
    if (open > MAX_LINKS) {
      this.refused++
      this.log.info({ links: open }, 'AMQP connection closed: too many links')
      conn.close({ condition: 'amqp:resource-limit-exceeded', description: `more than ${MAX_LINKS} links on one connection` })
      return
    }
    const terminus = role === 'sender' ? link.source : link.target
    const address = terminus?.address ?? ''
    // The attach echoes the peer's termini (a refused link is detached right after, which is how
    // AMQP refuses) and is encoded now, before any handler runs: rhea writes a session's transfers
    // before its links' attach frames in one processing round, so a message sent at once would
    // reach the peer on a handle it does not know yet.
    if (link.source) link.set_source(link.source)
    if (link.target) link.set_target(link.target)
    ;(link.session as unknown as { _process(): void })._process()
    if (address === CBS_ADDRESS) return this.cbsLink(conn, link, role)
    const route = this.routes.find((r) => safeMatch(r, address))
    const handler = role === 'sender' ? route?.onSender : route?.onReceiver
    if (!route || !handler) {
      this.log.debug({ address, role }, 'AMQP link refused: no such address')
      link.close({ condition: 'amqp:not-found', description: `no ${role === 'sender' ? 'source' : 'target'} "${address.slice(0, 200)}" here` })
      return
    }
    const ctx = this.contextOf(conn, address)
    if (route.right && !ctx.has(route.right)) {
      this.log.info({ address, need: route.right }, 'AMQP link refused: not authorized')
      ctx.unauthorized(link, `a token with the ${route.right} right is needed for ${address} (put one on $cbs first)`)
      return
    }
    try {
      ;(handler as (l: Sender | Receiver, x: AmqpLinkContext) => void).call(route, link, ctx)
    } catch (err) {
      this.log.warn({ address, route: route.name, err: (err as Error).message }, 'AMQP route failed')
      link.close({ condition: 'amqp:internal-error', description: (err as Error).message })
    }
  }

  // ---- $cbs: put-token (the AMQP claims-based security draft, as the Azure SDKs send it) ----

  private cbsLink(conn: Connection, link: Sender | Receiver, role: 'sender' | 'receiver'): void {
    if (role === 'sender') return // replies go out on it (answer())
    const receiver = link as Receiver
    receiver.add_credit(this.creditWindow)
    receiver.on('message', (ctx: EventContext) => {
      ctx.delivery?.accept()
      receiver.add_credit(1)
      this.putToken(conn, ctx.message as Message)
    })
  }

  private putToken(conn: Connection, msg: Message): void {
    const props = (msg.application_properties ?? {}) as Record<string, unknown>
    const answer = (status: number, description: string) => this.answer(conn, msg, status, description)
    if (props.operation !== 'put-token') return answer(400, `unsupported operation "${String(props.operation)}" (only put-token)`)
    if (typeof props.type !== 'string' || !CBS_TOKEN_TYPES.has(props.type)) return answer(400, `unsupported token type "${String(props.type)}"`)
    const body = Buffer.isBuffer(msg.body) ? msg.body.toString('utf8') : msg.body
    if (typeof body !== 'string' || typeof props.name !== 'string') return answer(400, 'put-token needs the audience (name) and the token (body)')
    try {
      const grant = this.opts.verifyToken(body, props.name, conn.hostname)
      this.state.get(conn)?.grants.push(grant)
      this.log.info({ audience: props.name, rights: grant.rights }, 'AMQP token accepted')
      answer(200, 'OK')
    } catch (err) {
      this.log.info({ audience: props.name, reason: (err as Error).message }, 'AMQP token refused')
      answer(401, (err as Error).message)
    }
  }

  /** Sends a CBS reply on the peer's `$cbs` receiving link (the one whose target is `reply_to`, else any). */
  private answer(conn: Connection, request: Message, status: number, description: string): void {
    const senders = this.cbsSenders(conn)
    const sender = senders.find((s) => s.target?.address === request.reply_to) ?? senders[0]
    if (!sender) return this.log.debug('CBS request without a $cbs receiving link: nobody to answer')
    sender.send({
      correlation_id: request.message_id,
      to: request.reply_to,
      application_properties: { 'status-code': status, 'status-description': description },
      body: undefined,
    })
  }

  private cbsSenders(conn: Connection): Sender[] {
    const out: Sender[] = []
    for (const session of Object.values((conn as unknown as RheaConnectionInternals).local_channel_map ?? {})) {
      for (const link of Object.values(session.links ?? {})) {
        const l = link as unknown as Sender
        if (l.is_sender?.() && l.source?.address === CBS_ADDRESS && l.is_open()) out.push(l)
      }
    }
    return out
  }
}

function safeMatch(r: AmqpRoute, address: string): boolean {
  try {
    return r.matches(address)
  } catch {
    return false
  }
}
