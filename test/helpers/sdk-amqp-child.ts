/**
 * Child process of test/unit/sdk-amqp.test.ts: the official service SDK's `Client` (azure-iothub,
 * AMQP on 5671 or AmqpWs on 443), unchanged, driven by the parent over IPC one call at a time.
 *
 * Why a child: the Client has no option for a CA, so the hub CA comes from NODE_EXTRA_CA_CERTS,
 * which Node reads only at process start (as helpers/sdk-service-child.ts).
 *
 * Requests: {id, op: 'open', cs, transport: 'Amqp'|'AmqpWs'} · {id, op: 'send', deviceId, data,
 * messageId?, correlationId?, ack?, expiryTimeUtc?, properties?} · {id, op: 'feedback', messageId}
 * (resolves with the first feedback record for that message, completing every feedback message
 * read) · {id, op: 'close'}. Answers: {id, ok: true, result} or {id, ok: false, error: {name, message, cause}} (cause: the
 * name of the error's `amqpError`, what the SDK wraps under "Could not connect").
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

interface SdkMessage {
  messageId?: string
  correlationId?: string
  ack?: string
  expiryTimeUtc?: string | number
  properties: { add(k: string, v: string): void }
  getData(): Buffer | string
  contentType?: string
}
interface FeedbackReceiver {
  on(ev: 'message', cb: (m: SdkMessage) => void): void
  on(ev: 'error', cb: (e: Error) => void): void
  complete(m: SdkMessage, done: Done<unknown>): void
}
type Done<T> = (err: Error | null | undefined, result?: T) => void
/** Callback forms: the SDK's promise forms of getFeedbackReceiver do not resolve with the receiver. */
interface ServiceClient {
  open(done: Done<unknown>): void
  close(done: Done<unknown>): void
  send(deviceId: string, m: SdkMessage, done: Done<unknown>): void
  getFeedbackReceiver(done: Done<FeedbackReceiver>): void
}

function call<T>(f: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => f((err, r) => (err ? reject(err) : resolve(r as T))))
}
const iothub = require('azure-iothub') as {
  Client: { fromConnectionString(cs: string, transport?: unknown): ServiceClient }
  AmqpWs: unknown
}
const { Message } = require('azure-iot-common') as { Message: new (data: string) => SdkMessage }

interface Request {
  id: number
  op: 'open' | 'send' | 'feedback' | 'close'
  cs?: string
  transport?: 'Amqp' | 'AmqpWs'
  deviceId?: string
  data?: string
  messageId?: string
  correlationId?: string
  ack?: string
  expiryTimeUtc?: string
  properties?: Record<string, string>
}

let client: ServiceClient | undefined
/** Every feedback record read so far (completed), and who waits for which message's record. */
const records: Record<string, unknown>[] = []
const waiters: { messageId: string; resolve(r: unknown): void }[] = []
let receiving = false

function deliverRecords(): void {
  for (const w of [...waiters]) {
    const r = records.find((x) => x.originalMessageId === w.messageId)
    if (r) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve({ record: r, contentType: lastContentType })
    }
  }
}
let lastContentType: string | undefined

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'open': {
      client = req.transport === 'AmqpWs' ? iothub.Client.fromConnectionString(req.cs as string, iothub.AmqpWs) : iothub.Client.fromConnectionString(req.cs as string)
      await call((d) => (client as ServiceClient).open(d))
      return 'open'
    }
    case 'send': {
      const m = new Message(req.data ?? '')
      if (req.messageId) m.messageId = req.messageId
      if (req.correlationId) m.correlationId = req.correlationId
      if (req.ack) m.ack = req.ack
      // Unix ms: the rhea the SDK bundles (1.0.x) encodes an AMQP timestamp only from a number.
      if (req.expiryTimeUtc) m.expiryTimeUtc = Date.parse(req.expiryTimeUtc)
      for (const [k, v] of Object.entries(req.properties ?? {})) m.properties.add(k, v)
      const r = await call<unknown>((d) => (client as ServiceClient).send(req.deviceId as string, m, d))
      return (r as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? 'sent'
    }
    case 'feedback': {
      if (!receiving) {
        receiving = true
        const receiver = await call<FeedbackReceiver>((d) => (client as ServiceClient).getFeedbackReceiver(d))
        receiver.on('error', (e) => process.stderr.write(`feedback receiver error: ${e.message}\n`))
        receiver.on('message', (m) => {
          lastContentType = m.contentType
          const body = JSON.parse(m.getData().toString()) as Record<string, unknown>[]
          records.push(...body)
          receiver.complete(m, () => deliverRecords())
        })
      }
      return new Promise((resolve) => {
        waiters.push({ messageId: req.messageId as string, resolve })
        deliverRecords()
      })
    }
    case 'close':
      if (client) await call((d) => (client as ServiceClient).close(d))
      return 'closed'
  }
}

process.on('message', (raw: unknown) => {
  const req = raw as Request
  handle(req).then(
    (result) => process.send?.({ id: req.id, ok: true, result }),
    (err: Error & { amqpError?: Error }) =>
      process.send?.({ id: req.id, ok: false, error: { name: err?.constructor?.name ?? err?.name, message: err?.message, cause: err?.amqpError?.constructor?.name } }),
  )
})
process.on('disconnect', () => process.exit(0))
process.send?.({ id: 0, ok: true, result: 'ready' })
