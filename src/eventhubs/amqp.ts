/**
 * The built-in endpoint on the hub's AMQP listener (transports/amqp.ts), as `@azure/event-hubs`
 * reads it (PROTOCOL.md §10):
 * - `$management` (also `<entity>/$management`): request/response; `READ` of `com.microsoft:eventhub`
 *   and `com.microsoft:partition`, the fields @azure/event-hubs' managementClient reads.
 * - `<entity>/ConsumerGroups/<group>/Partitions/<n>`: a partition reader from the position in the
 *   link's `apache.org:selector-filter:string`, sending only as much as the client's credit and
 *   tailing the log live.
 * Every link needs a CBS token with ServiceConnect (the listener checks it at attach; a reader
 * re-checks it as it streams, since tokens expire). Entity = the hub name.
 */
import rhea, { type EventContext, type Message, type Receiver, type Sender } from 'rhea'

import { EdgeMqError, NotFoundError } from '../errors.js'
import type { AmqpLinkContext, AmqpListener } from '../transports/amqp.js'
import type { BuiltinEndpoint } from './endpoint.js'
import { parseSelectorFilter } from './filter.js'
import type { EventLog } from './log.js'
import type { StoredEvent } from './types.js'

const SELECTOR_FILTER = 'apache.org:selector-filter:string'
const RUNTIME_METRIC = 'com.microsoft:enable-receiver-runtime-metric'
const EPOCH = 'com.microsoft:epoch'
/** Events read from the log per pump turn at most (the client's credit bounds it further). */
const READ_BATCH = 256

/** `<entity>/ConsumerGroups/<group>/Partitions/<n>` → its parts (segment names case-insensitive). */
export function parsePartitionAddress(address: string): { entity: string; consumerGroup: string; partition: string } | undefined {
  const m = /^\/?([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i.exec(address)
  return m ? { entity: m[1], consumerGroup: m[2], partition: m[3] } : undefined
}

/** An event as IoT Hub puts it on its built-in endpoint: annotations, properties, application properties, data body. */
export function toAmqpMessage(ev: StoredEvent): Message {
  const { types } = rhea
  const sys = ev.systemProperties
  const annotations: Record<string, unknown> = {
    'iothub-connection-device-id': ev.deviceId,
    ...(ev.moduleId ? { 'iothub-connection-module-id': ev.moduleId } : {}),
    ...(ev.authMethod ? { 'iothub-connection-auth-method': JSON.stringify({ scope: ev.moduleId ? 'module' : 'device', type: authType(ev.authMethod), issuer: 'iothub', acceptingIpFilterRule: null }) } : {}),
    ...(ev.generationId ? { 'iothub-connection-auth-generation-id': ev.generationId } : {}),
    'iothub-enqueuedtime': types.wrap_timestamp(ev.enqueuedTime),
    'iothub-message-source': 'Telemetry',
    'x-opt-sequence-number': types.wrap_long(ev.sequenceNumber),
    'x-opt-offset': String(ev.offset),
    'x-opt-enqueued-time': types.wrap_timestamp(ev.enqueuedTime),
  }
  const msg: Message = {
    body: rhea.message.data_section(ev.body),
    message_annotations: annotations,
    application_properties: { ...ev.properties },
  }
  if (sys.messageId !== undefined) msg.message_id = sys.messageId
  if (sys.correlationId !== undefined) msg.correlation_id = sys.correlationId
  if (sys.contentType !== undefined) msg.content_type = sys.contentType
  if (sys.contentEncoding !== undefined) msg.content_encoding = sys.contentEncoding
  if (sys.userId !== undefined) msg.user_id = sys.userId
  if (sys.to !== undefined) msg.to = sys.to
  return msg
}

/** IoT Hub's names for the authentication types in `iothub-connection-auth-method`. */
function authType(method: string): string {
  if (method === 'x509-thumbprint') return 'x509Certificate'
  if (method === 'x509-ca') return 'x509CA'
  return 'sas'
}

/** A management answer: status and body (a map), as core-amqp's RequestResponseLink reads it. */
export interface ManagementAnswer {
  status: number
  description: string
  condition?: string
  body?: Record<string, unknown>
}

/** Answers one `$management` request (application properties as sent by @azure/event-hubs). */
export function answerManagement(endpoint: BuiltinEndpoint, props: Record<string, unknown>): ManagementAnswer {
  const { types } = rhea
  if (props.operation !== 'READ') return { status: 400, condition: 'com.microsoft:argument-error', description: `unsupported operation "${String(props.operation)}" (only READ)` }
  if (typeof props.name !== 'string' || props.name.toLowerCase() !== endpoint.name.toLowerCase()) {
    return { status: 404, condition: 'com.microsoft:entity-not-found', description: `entity "${String(props.name)}" does not exist here; the built-in endpoint's entity is "${endpoint.name}"` }
  }
  if (props.type === 'com.microsoft:eventhub') {
    const info = endpoint.eventHubInfo()
    return {
      status: 200,
      description: 'OK',
      body: { name: info.name, type: 'com.microsoft:eventhub', created_at: types.wrap_timestamp(info.createdAt), partition_count: info.partitionCount, partition_ids: info.partitionIds },
    }
  }
  if (props.type === 'com.microsoft:partition') {
    try {
      const p = endpoint.partitionInfo(String(props.partition))
      return {
        status: 200,
        description: 'OK',
        body: {
          name: endpoint.name,
          type: 'com.microsoft:partition',
          partition: String(p.partition),
          begin_sequence_number: types.wrap_long(p.beginSequenceNumber),
          last_enqueued_sequence_number: types.wrap_long(p.lastSequenceNumber),
          last_enqueued_offset: p.lastOffset,
          last_enqueued_time_utc: types.wrap_timestamp(p.lastEnqueuedTime),
          is_partition_empty: p.isEmpty,
        },
      }
    } catch (err) {
      return { status: 404, condition: 'com.microsoft:entity-not-found', description: (err as Error).message }
    }
  }
  return { status: 400, condition: 'com.microsoft:argument-error', description: `unsupported type "${String(props.type)}" (com.microsoft:eventhub or com.microsoft:partition)` }
}

/** Streams one partition to one receiving link, from `next` on, as far as the link's credit goes. */
class PartitionReader {
  private stopped = false
  private readonly unsubscribe: () => void

  constructor(
    private readonly link: Sender,
    private readonly ctx: AmqpLinkContext,
    private readonly log: EventLog,
    private readonly partition: number,
    private next: number,
    private readonly runtimeMetric: boolean,
  ) {
    this.unsubscribe = log.subscribe(partition, () => this.pump())
    link.on('sendable', () => this.pump())
    // A connection that drops ends its links without an event: pump() stops at the next append.
    const stop = () => this.stop()
    link.on('sender_close', stop)
    link.on('sender_error', stop)
    this.pump()
  }

  private pump(): void {
    if (this.stopped) return
    if (!this.link.is_open()) return this.stop()
    if (!this.ctx.has('ServiceConnect')) {
      this.stop()
      return this.ctx.unauthorized(this.link, 'the token with ServiceConnect expired: put a new one on $cbs')
    }
    while (this.link.sendable()) {
      const credit = (this.link as unknown as { credit: number }).credit
      const batch = this.log.read(this.partition, this.next, Math.min(credit, READ_BATCH))
      if (batch.length === 0) return
      for (const ev of batch) {
        const msg = toAmqpMessage(ev)
        if (this.runtimeMetric) msg.delivery_annotations = this.runtimeInfo()
        this.link.send(msg)
        this.next = ev.sequenceNumber + 1
      }
    }
  }

  /** What `trackLastEnqueuedEventProperties` reads (delivery annotations). */
  private runtimeInfo(): Record<string, unknown> {
    const { types } = rhea
    const p = this.log.partitionInfo(this.partition)
    return {
      last_enqueued_sequence_number: types.wrap_long(p.lastSequenceNumber),
      last_enqueued_offset: p.lastOffset,
      last_enqueued_time_utc: types.wrap_timestamp(p.lastEnqueuedTime),
      runtime_info_retrieval_time_utc: types.wrap_timestamp(Date.now()),
    }
  }

  get active(): boolean {
    return !this.stopped && this.link.is_open()
  }

  /** Ends this reader's link (Event Hubs: a receiver with a higher epoch took the partition). */
  steal(description: string): void {
    this.stop()
    this.link.close({ condition: 'amqp:link:stolen', description })
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.unsubscribe()
  }
}

/**
 * Epoch (owner level) receivers, as Event Hubs: per consumer group and partition, a receiver with an
 * epoch takes the partition from readers with a lower one or none (`amqp:link:stolen`, the SDK's
 * ReceiverDisconnectedError), and a reader with a lower epoch or none is refused while it holds it.
 */
class Owners {
  private readonly readers = new Map<string, { epoch?: number; reader: PartitionReader }[]>()

  /** Throws (the refusal) or makes room for a reader with `epoch`. */
  admit(key: string, epoch: number | undefined): void {
    const live = (this.readers.get(key) ?? []).filter((r) => r.reader.active)
    this.readers.set(key, live)
    const top = Math.max(-1, ...live.map((r) => r.epoch ?? -1))
    if (top >= 0 && (epoch === undefined || epoch < top)) {
      throw Object.assign(new Error(`a receiver with epoch ${top} holds this partition${epoch === undefined ? '' : ` (this one has ${epoch})`}`), { condition: 'amqp:link:stolen' })
    }
    if (epoch === undefined) return
    for (const r of live) if ((r.epoch ?? -1) < epoch) r.reader.steal(`a receiver with the higher epoch ${epoch} took this partition`)
  }

  add(key: string, epoch: number | undefined, reader: PartitionReader): void {
    this.readers.set(key, [...(this.readers.get(key) ?? []).filter((r) => r.reader.active), { epoch, reader }])
  }
}

/** The filter string of a link's source (`apache.org:selector-filter:string`, possibly a described value). */
function selectorOf(link: Sender): string | undefined {
  const filter = (link.source as { filter?: Record<string, unknown> } | undefined)?.filter
  const f = filter?.[SELECTOR_FILTER] as unknown
  if (f === undefined || f === null) return undefined
  if (typeof f === 'string') return f
  const v = (f as { value?: unknown }).value
  return typeof v === 'string' ? v : String(v)
}

function condition(err: unknown): { condition: string; description: string } {
  const given = (err as { condition?: unknown }).condition
  if (typeof given === 'string') return { condition: given, description: (err as Error).message }
  if (err instanceof NotFoundError) return { condition: 'amqp:not-found', description: err.message }
  if (err instanceof EdgeMqError) return { condition: 'amqp:invalid-field', description: err.message }
  return { condition: 'amqp:internal-error', description: (err as Error).message }
}

function openReader(endpoint: BuiltinEndpoint, owners: Owners, link: Sender, ctx: AmqpLinkContext): void {
  const parts = parsePartitionAddress(ctx.address)
  try {
    if (!parts || parts.entity.toLowerCase() !== endpoint.name.toLowerCase()) throw new NotFoundError(`no Event Hub "${parts?.entity ?? ctx.address}" here; the built-in endpoint's entity is "${endpoint.name}"`)
    const partition = endpoint.partition(parts.partition)
    const position = parseSelectorFilter(selectorOf(link))
    const wantsMetric = ([] as unknown[]).concat(link.desired_capabilities ?? []).some((c) => String(c) === RUNTIME_METRIC)
    if (wantsMetric) (link as unknown as { local: { attach: { offered_capabilities?: string } } }).local.attach.offered_capabilities = RUNTIME_METRIC
    // The group may have been created by another process a moment ago: the lookup may go to the store.
    const rawEpoch = (link.properties as Record<string, unknown> | undefined)?.[EPOCH]
    const epoch = rawEpoch === undefined || rawEpoch === null ? undefined : Number(rawEpoch)
    endpoint.consumerGroup(parts.consumerGroup).then(
      (group) => {
        if (!link.is_open()) return
        const key = `${group.toLowerCase()}/${partition}`
        try {
          owners.admit(key, epoch)
        } catch (err) {
          ctx.log.info({ address: ctx.address, epoch, err: (err as Error).message }, 'Event Hubs reader refused')
          return link.close(condition(err))
        }
        owners.add(key, epoch, new PartitionReader(link, ctx, endpoint.log, partition, endpoint.log.resolve(partition, position), wantsMetric))
        ctx.log.info({ address: ctx.address, position, ...(epoch !== undefined ? { epoch } : {}) }, 'Event Hubs reader attached')
      },
      (err: unknown) => link.close(condition(err)),
    )
  } catch (err) {
    ctx.log.info({ address: ctx.address, err: (err as Error).message }, 'Event Hubs reader refused')
    link.close(condition(err))
  }
}

/** `$management`: requests arrive on the peer's sending link, answers go out on its receiving link. */
function serveManagementRequests(endpoint: BuiltinEndpoint, link: Receiver, ctx: AmqpLinkContext, replyLinks: Map<string, Sender>): void {
  ctx.grantCredit(link)
  link.on('message', (e: EventContext) => {
    e.delivery?.accept()
    link.add_credit(1)
    const request = e.message as Message
    const answer = ctx.has('ServiceConnect')
      ? answerManagement(endpoint, (request.application_properties ?? {}) as Record<string, unknown>)
      : { status: 401, condition: 'amqp:unauthorized-access', description: 'a token with ServiceConnect is needed' }
    // Links of dropped connections close without an event: forget them here.
    for (const [k, s] of replyLinks) if (!s.is_open()) replyLinks.delete(k)
    const reply = replyLinks.get(String(request.reply_to)) ?? [...replyLinks.values()].find((s) => s.connection === ctx.connection)
    if (!reply) return ctx.log.debug('$management request without a receiving link: nobody to answer')
    reply.send({
      correlation_id: request.message_id,
      to: request.reply_to,
      application_properties: { 'status-code': answer.status, 'status-description': answer.description, ...(answer.condition ? { 'error-condition': answer.condition } : {}) },
      body: answer.body,
    })
  })
}

/** Serves the built-in endpoint on `amqp`; returns what removes it again. */
export function serveEventHubs(amqp: AmqpListener, endpoint: BuiltinEndpoint): () => void {
  // Reply links by their target address (the request's reply_to), across connections.
  const replyLinks = new Map<string, Sender>()
  const owners = new Owners()
  const offs = [
    amqp.route({
      name: 'eventhubs-management',
      matches: (address) => address === '$management' || address.toLowerCase() === `${endpoint.name.toLowerCase()}/$management`,
      right: 'ServiceConnect',
      onReceiver: (link, ctx) => serveManagementRequests(endpoint, link, ctx, replyLinks),
      onSender: (link) => {
        const key = String(link.target?.address ?? link.name)
        replyLinks.set(key, link)
        link.on('sender_close', () => {
          if (replyLinks.get(key) === link) replyLinks.delete(key)
        })
      },
    }),
    amqp.route({
      name: 'eventhubs-partitions',
      matches: (address) => parsePartitionAddress(address) !== undefined,
      right: 'ServiceConnect',
      onSender: (link, ctx) => openReader(endpoint, owners, link, ctx),
    }),
  ]
  return () => offs.forEach((off) => off())
}
