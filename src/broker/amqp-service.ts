/**
 * IoT Hub's service-side AMQP addresses, served on the hub's AMQP listener (transports/amqp.ts) for
 * the azure-iothub `Client`:
 * - `/messages/devicebound` (the peer sends): each message goes to the device named by its `to`
 *   (`/devices/<id>/messages/devicebound`) through the same C2D path as the REST API (delivered at
 *   once, or kept in the device's queue: 50 at most, TTL). Accepted, or rejected with the IoT Hub
 *   condition the SDK translates (amqp:not-found → DeviceNotFoundError, amqp:resource-limit-exceeded
 *   → DeviceMaximumQueueDepthExceededError, …).
 * - `/messages/serviceBound/feedback` (the peer receives): delivery feedback batches, each removed
 *   when the reader accepts it and put back when it releases it or goes away unsettled.
 * Both need the ServiceConnect right.
 */
import type { Delivery, EventContext, Message, Receiver, Sender } from 'rhea'
import rhea from 'rhea'

import { toAmqpError, UnauthorizedError, UsageError } from '../errors.js'
import { FEEDBACK_CONTENT_TYPE, parseFeedbackAck, type SystemProperties } from '../iothub/index.js'
import type { AmqpLinkContext, AmqpListener } from '../transports/amqp.js'
import type { ServiceIotHub } from './host.js'

export const C2D_ADDRESS = '/messages/devicebound'
export const FEEDBACK_ADDRESS = '/messages/serviceBound/feedback'

const DEVICEBOUND_TO = /^\/devices\/([^/]+)\/messages\/devicebound\/?$/i

/** An AMQP message id / correlation id (string, ulong, uuid or binary) as IoT Hub's string form. */
function idString(v: unknown): string | undefined {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  if (Buffer.isBuffer(v)) return v.length === 16 ? rhea.uuid_to_string(v) : v.toString('hex')
  return undefined
}

/** The message body as bytes: data section(s), or an AMQP value (string, binary, else JSON). */
function bodyBytes(body: unknown): Buffer {
  const section = body as { typecode?: number; content?: unknown; multiple?: boolean } | undefined
  if (section && typeof section === 'object' && section.typecode === 0x75) {
    const parts = section.multiple && Array.isArray(section.content) ? section.content : [section.content]
    return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(String(p)))))
  }
  if (body === undefined || body === null) return Buffer.alloc(0)
  if (Buffer.isBuffer(body)) return body
  if (typeof body === 'string') return Buffer.from(body)
  return Buffer.from(JSON.stringify(body))
}

function expiryOf(msg: Message): string | undefined {
  const abs = msg.absolute_expiry_time as unknown
  const at = abs instanceof Date ? abs.getTime() : typeof abs === 'number' ? abs : msg.ttl ? Date.now() + Number(msg.ttl) : undefined
  return at === undefined || !Number.isFinite(at) || at <= 0 ? undefined : new Date(at).toISOString()
}

/** A devicebound AMQP message → the C2D send it asks for; throws UsageError when it names no device. */
export function c2dFromAmqp(msg: Message): { deviceId: string; data: Buffer; properties: Record<string, string>; sys: SystemProperties; ack: ReturnType<typeof parseFeedbackAck> } {
  const m = DEVICEBOUND_TO.exec(typeof msg.to === 'string' ? msg.to : '')
  if (!m) throw new UsageError(`the message's "to" must be /devices/<deviceId>/messages/devicebound, got "${String(msg.to).slice(0, 200)}"`)
  let deviceId: string
  try {
    deviceId = decodeURIComponent(m[1])
  } catch {
    throw new UsageError(`malformed percent-encoding in "to" (${String(msg.to).slice(0, 200)})`)
  }
  const properties: Record<string, string> = {}
  let ack
  for (const [k, v] of Object.entries((msg.application_properties ?? {}) as Record<string, unknown>)) {
    if (k === 'iothub-ack') ack = parseFeedbackAck(v)
    else if (v !== undefined && v !== null) properties[k] = typeof v === 'object' && !(v instanceof Date) ? JSON.stringify(v) : String(v)
  }
  const messageId = idString(msg.message_id)
  const correlationId = idString(msg.correlation_id)
  const expiryTimeUtc = expiryOf(msg)
  const sys: SystemProperties = {
    ...(messageId ? { messageId } : {}),
    ...(correlationId ? { correlationId } : {}),
    ...(expiryTimeUtc ? { expiryTimeUtc } : {}),
    ...(typeof msg.content_type === 'string' ? { contentType: msg.content_type } : {}),
    ...(typeof msg.content_encoding === 'string' ? { contentEncoding: msg.content_encoding } : {}),
  }
  return { deviceId, data: bodyBytes(msg.body), properties, sys, ack }
}

/** Registers the service addresses on `amqp`; returns a function that removes them. */
export function serveIotHubOverAmqp(amqp: AmqpListener, hub: ServiceIotHub): () => void {
  const offC2d = amqp.route({
    name: 'c2d',
    matches: (a) => a.toLowerCase() === C2D_ADDRESS,
    right: 'ServiceConnect',
    onReceiver: (link, ctx) => receiveC2d(hub, link, ctx),
  })
  const offFeedback = amqp.route({
    name: 'feedback',
    matches: (a) => a.toLowerCase() === FEEDBACK_ADDRESS.toLowerCase(),
    right: 'ServiceConnect',
    onSender: (link) => serveFeedback(hub, link),
  })
  return () => {
    offC2d()
    offFeedback()
  }
}

function receiveC2d(hub: ServiceIotHub, link: Receiver, ctx: AmqpLinkContext): void {
  ctx.grantCredit(link)
  // Credit bounds what is in flight; a peer that sends past it loses the link, not our memory.
  let pending = 0
  link.on('message', (m: EventContext) => {
    const delivery = m.delivery as Delivery
    if (++pending > ctx.creditWindow) {
      link.close({ condition: 'amqp:link:transfer-limit-exceeded', description: `more than ${ctx.creditWindow} unsettled messages (sent without credit)` })
      return
    }
    const send = async () => {
      if (!ctx.has('ServiceConnect')) throw new UnauthorizedError('the token that granted ServiceConnect on this connection has expired')
      const c = c2dFromAmqp(m.message as Message)
      return hub.sendC2d(c.deviceId, c.data, c.properties, c.sys, { ack: c.ack })
    }
    send().then(
      () => delivery.accept(),
      (err: unknown) => {
        ctx.log.info({ reason: (err as Error).message }, 'AMQP C2D message rejected')
        delivery.reject(toAmqpError(err))
      },
    ).finally(() => {
      pending--
      if (link.is_open()) link.add_credit(1)
    })
  })
}

/** Streams feedback batches to a reader as its credit allows; settlement removes or returns them. */
function serveFeedback(hub: ServiceIotHub, link: Sender): void {
  const q = hub.feedback
  const inFlight = new Map<Delivery, string>()
  const pump = () => {
    while (link.is_open() && link.sendable()) {
      const batch = q.take()
      if (!batch) return
      const d = link.send({
        message_id: `feedback-${batch.lockToken}-${Date.now()}`,
        content_type: FEEDBACK_CONTENT_TYPE,
        message_annotations: { 'iothub-enqueuedtime': new Date(batch.enqueuedTimeUtc) },
        body: rhea.message.data_section(Buffer.from(JSON.stringify(batch.records))),
      })
      inFlight.set(d, batch.lockToken)
    }
  }
  const settle = (outcome: 'accept' | 'release') => (ctx: EventContext) => {
    const lock = ctx.delivery ? inFlight.get(ctx.delivery) : undefined
    if (lock === undefined || !ctx.delivery) return
    inFlight.delete(ctx.delivery)
    q.settle(lock, outcome)
  }
  // Rejected feedback is dropped (as IoT Hub dead-letters it); released / modified comes back.
  link.on('accepted', settle('accept'))
  link.on('rejected', settle('accept'))
  link.on('released', settle('release'))
  link.on('modified', settle('release'))
  link.on('sendable', pump)
  q.events.on('available', pump)
  let done = false
  const stop = () => {
    if (done) return
    done = true
    q.events.off('available', pump)
    for (const lock of inFlight.values()) q.settle(lock, 'release')
    inFlight.clear()
  }
  link.on('sender_close', stop)
  link.on('sender_error', stop)
  link.connection.on('disconnected', stop)
}
