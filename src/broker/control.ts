/**
 * The loopback control API: the service side of the hub (what IoT Hub's REST API and
 * `az iot hub` do) for a running broker — twins, direct methods, C2D, module inputs, the
 * telemetry event stream, status. IoT Hub REST shapes where natural (`/twins/{id}`,
 * `/twins/{id}/methods`); authenticated with a service SAS (skn = a hub policy) whose policy
 * must hold the right each route needs (rights.ts), the same on the `--rest-port` HTTPS API.
 */
import { serviceTwinView } from '../service/twin-view.js'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'

import { DEAD_LETTERS_PATH, parseIds } from '../bridge/dead-letters.js'
import { EdgeMqError, InvalidDocumentError, toWireError, TooLargeError, UnauthorizedError, UsageError } from '../errors.js'
import type { TwinKey } from '../registry/types.js'
import type { HubEvent, ServiceHost } from './host.js'
import { isDpsRestPath, serveDpsRest } from './dps-rest.js'
import { registryRoutes, type RestRoute } from './registry-rest.js'
import { grants } from '../registry/rights.js'
import { C2D_SYSTEM_HEADERS, parseFeedbackAck, type FeedbackRecord, type SystemProperties } from '../iothub/index.js'
import { verifyServiceToken } from './service-auth.js'
import { listenWithHints } from '../util/listen.js'
import { serveMqttOverWebSocket, type MqttWebSocketOptions } from '../transports/websocket.js'

export interface ControlServer {
  port: number
  /** The HTTPS service REST port, when one was asked for. */
  restPort?: number
  close(): Promise<void>
}

export interface ControlServerOptions {
  port: number
  host?: string
  /** Also serve the same API over HTTPS (the azure-iothub SDK always dials https://<HostName>:443). */
  rest?: {
    port: number
    host: string
    key: string
    cert: string
    /** The hub CA: X.509 devices on `wss://…/$iothub/websocket` present certificates it signed. */
    ca?: string
    /** Also serve MQTT over WebSockets on this port, as IoT Hub does on 443. */
    mqttOverWebSocket?: MqttWebSocketOptions
  }
}

/** IoT Hub's REST body limit is far larger; 1 MiB keeps a bad client from eating memory. */
const MAX_BODY = 1024 * 1024

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent) return
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendError(res: ServerResponse, err: unknown): void {
  const w = toWireError(err)
  send(res, w.status, w.body)
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) throw new TooLargeError(`request body larger than ${MAX_BODY} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new TooLargeError(`request body larger than ${MAX_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req)
  if (body.length === 0) return {}
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object')
    return v as Record<string, unknown>
  } catch {
    throw new InvalidDocumentError('request body is not a JSON object', [{ path: '', message: 'not a JSON object' }])
  }
}

/** Verifies the request's service SAS and returns the rights of the policy that signed it. */
function authenticateRequest(broker: ServiceHost, req: IncomingMessage): readonly string[] {
  const header = req.headers.authorization
  if (!header) throw new UnauthorizedError('no Authorization header (a service SAS token is required)')
  const host = (req.headers.host ?? '').replace(/:\d+$/, '')
  const accepted = [broker.ctx.hub.hostName, host, `${host}:${req.socket.localPort}`].filter(Boolean)
  return verifyServiceToken(broker.ctx.hub.policies, header, accepted).rights
}

function twinKey(deviceId: string, moduleId?: string): TwinKey {
  return moduleId ? { deviceId, moduleId } : { deviceId }
}

function twinJson(broker: ServiceHost, key: TwinKey) {
  return serviceTwinView(broker.ctx, key, broker.iothub)
}

function propsFromHeaders(req: IncomingMessage): Record<string, string> {
  const props: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith('iothub-app-') && typeof v === 'string') props[k.slice('iothub-app-'.length)] = v
  }
  return props
}

function streamEvents(broker: ServiceHost, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const kind = url.searchParams.get('kind') === 'output' ? 'output' : 'event'
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' })
  res.write('\n') // flush headers so the client knows it is subscribed
  const bound = broker.settings.maxEventStreamBytes
  const onEvent = (ev: HubEvent) => {
    // A reader that stopped (suspended monitor, a pager) is disconnected once this much is unsent:
    // the broker never holds more for it. It can reconnect; what it missed is gone, as on a live hub.
    if (res.writableLength > bound) {
      stop()
      broker.refusals.note('event-reader-dropped', { unsentBytes: res.writableLength, address: req.socket.remoteAddress }, 'event stream reader disconnected: it stopped reading')
      res.destroy()
      return
    }
    res.write(JSON.stringify({ ...ev, payload: ev.payload.toString('base64') }) + '\n')
  }
  broker.iothub.events.on(kind, onEvent)
  const stop = () => broker.iothub.events.off(kind, onEvent)
  req.on('close', stop)
  res.on('close', stop)
}

/**
 * `hub monitor-feedback`: C2D delivery feedback records as NDJSON, consumed (IoT Hub's feedback
 * queue is read with settlement): a batch is gone once written out, back in the queue if the reader
 * disconnected before. `?deviceId=` takes only that device's records and leaves the others.
 */
function streamFeedback(broker: ServiceHost, req: IncomingMessage, res: ServerResponse, url: URL): void {
  const deviceId = url.searchParams.get('deviceId') ?? undefined
  const q = broker.iothub.feedback
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' })
  res.write('\n')
  let closed = false
  const only = deviceId === undefined ? undefined : (r: FeedbackRecord) => r.deviceId === deviceId
  const pump = () => {
    while (!closed) {
      const batch = q.take(only)
      if (!batch) return
      res.write(batch.records.map((r) => JSON.stringify(r) + '\n').join(''), (err) => q.settle(batch.lockToken, err ? 'release' : 'accept'))
    }
  }
  q.events.on('available', pump)
  const stop = () => {
    closed = true
    q.events.off('available', pump)
  }
  req.on('close', stop)
  res.on('close', stop)
  pump()
}

export async function startControlServer(broker: ServiceHost, opts: ControlServerOptions): Promise<ControlServer> {
  const routes: RestRoute[] = [
    ['GET', /^\/edgemq\/status$/, 'ServiceConnect', async (_q, res) => send(res, 200, broker.status())],
    ['GET', /^\/edgemq\/events$/, 'ServiceConnect', async (req, res, _m, url) => streamEvents(broker, req, res, url)],
    ['GET', /^\/edgemq\/feedback$/, 'ServiceConnect', async (req, res, _m, url) => streamFeedback(broker, req, res, url)],
    ['GET', /^\/twins\/([^/]+)(?:\/modules\/([^/]+))?$/, 'ServiceConnect', async (_q, res, m) => send(res, 200, await twinJson(broker, twinKey(m[0], m[1])))],
    [
      'PATCH|PUT',
      /^\/twins\/([^/]+)(?:\/modules\/([^/]+))?$/,
      'ServiceConnect',
      async (req, res, m) => {
        const body = await readJson(req)
        const props = body.properties as { desired?: unknown } | undefined
        const key = twinKey(m[0], m[1])
        await broker.iothub.updateTwin(key, { desired: props?.desired, tags: body.tags }, { ifMatch: req.headers['if-match'], replace: req.method === 'PUT' })
        send(res, 200, await twinJson(broker, key))
      },
    ],
    [
      'POST',
      /^\/twins\/([^/]+)(?:\/modules\/([^/]+))?\/methods$/,
      'ServiceConnect',
      async (req, res, m) => {
        const body = await readJson(req)
        if (typeof body.methodName !== 'string' || !body.methodName) throw new UsageError('methodName is required')
        const timeout = Number(body.responseTimeoutInSeconds ?? 30)
        if (!Number.isFinite(timeout) || timeout < 5 || timeout > 300) throw new UsageError('responseTimeoutInSeconds must be 5–300')
        await broker.ctx.registry.identity(m[0], m[1])
        const r = await broker.iothub.invokeMethod(twinKey(m[0], m[1]), body.methodName, body.payload, timeout)
        send(res, 200, r)
      },
    ],
    // IoT Hub's HTTPS device receive/settle paths (az iot device c2d-message receive/complete/abandon/reject), served to the CLI with ServiceConnect.
    [
      'GET',
      /^\/devices\/([^/]+)\/messages\/deviceBound$/,
      'ServiceConnect',
      async (_q, res, m, url) => {
        const lt = Number(url.searchParams.get('lockTimeout') ?? 60)
        if (!Number.isInteger(lt) || lt < 1 || lt > 300) throw new UsageError('lockTimeout must be a whole number of seconds from 1 to 300')
        const r = await broker.iothub.receiveC2dLocked(m[0], lt)
        if (r) send(res, 200, r)
        else send(res, 204)
      },
    ],
    ['DELETE', /^\/devices\/([^/]+)\/messages\/deviceBound\/([^/]+)$/, 'ServiceConnect', async (_q, res, m, url) => send(res, 200, await broker.iothub.settleC2d(m[0], m[1], url.searchParams.has('reject') ? 'reject' : 'complete'))],
    ['POST', /^\/devices\/([^/]+)\/messages\/deviceBound\/([^/]+)\/abandon$/, 'ServiceConnect', async (_q, res, m) => send(res, 200, await broker.iothub.settleC2d(m[0], m[1], 'abandon'))],
    ['DELETE', /^\/devices\/([^/]+)\/commands$/, 'ServiceConnect', async (_q, res, m) => send(res, 200, await broker.iothub.purgeC2d(m[0]))],
    [
      'POST',
      /^\/devices\/([^/]+)\/messages\/deviceBound$/,
      'ServiceConnect',
      async (req, res, m) => {
        const data = await readBody(req)
        const sys: SystemProperties = {}
        for (const [field, header] of C2D_SYSTEM_HEADERS) {
          const v = req.headers[header]
          if (typeof v === 'string') sys[field] = v
        }
        const r = await broker.iothub.sendC2d(m[0], data, propsFromHeaders(req), sys, { ack: parseFeedbackAck(req.headers['iothub-ack']) })
        send(res, 200, r)
      },
    ],
    [
      'POST',
      /^\/edgemq\/modules\/([^/]+)\/([^/]+)\/inputs\/([^/]+)$/,
      'ServiceConnect',
      async (req, res, m) => {
        const data = await readBody(req)
        await broker.iothub.sendModuleInput(m[0], m[1], m[2], data, propsFromHeaders(req))
        send(res, 204)
      },
    ],
    // The bridge's dead-letter store (`edgemq bridge dead-letters …` while the broker runs).
    [
      'GET',
      new RegExp(`^${DEAD_LETTERS_PATH}$`),
      'ServiceConnect',
      async (_q, res, _m, url) => {
        const num = (k: string) => {
          const v = url.searchParams.get(k)
          if (v === null) return undefined
          if (!/^\d+$/.test(v)) throw new UsageError(`${k} must be a positive integer, got "${v}"`)
          return Number(v)
        }
        send(res, 200, await broker.deadLetters.list({ limit: num('limit'), afterId: num('afterId') }))
      },
    ],
    ['POST', new RegExp(`^${DEAD_LETTERS_PATH}/retry$`), 'ServiceConnect', async (req, res) => send(res, 200, await broker.deadLetters.retry(parseIds((await readJson(req)).ids)))],
    ['POST', new RegExp(`^${DEAD_LETTERS_PATH}/purge$`), 'ServiceConnect', async (req, res) => send(res, 200, await broker.deadLetters.purge(parseIds((await readJson(req)).ids)))],
    ...registryRoutes(broker, { readJson, send }),
  ]

  const onRequest: RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    // The DPS service API: its own policies and error shape (dps-rest.ts).
    if (isDpsRestPath(url.pathname)) return void serveDpsRest(broker.dps.service(), req, res, url, { readJson, send }, broker.ctx.hub.hostName)
    const handle = async () => {
      const rights = authenticateRequest(broker, req)
      let pathKnown = false
      for (const [methods, re, need, handler] of routes) {
        const match = re.exec(url.pathname)
        if (!match) continue
        pathKnown = true
        if (!methods.split('|').includes(req.method ?? '')) continue
        if (!grants(rights, need)) throw new UnauthorizedError(`the shared access policy that signed this token does not have the ${need} right this request needs`)
        let params: string[]
        try {
          params = match.slice(1).map((x) => (x === undefined ? (x as unknown as string) : decodeURIComponent(x)))
        } catch {
          throw new UsageError(`malformed percent-encoding in ${url.pathname}`)
        }
        return handler(req, res, params, url)
      }
      if (pathKnown) throw new EdgeMqError(`${req.method} is not supported on ${url.pathname}`, { code: 'METHOD_NOT_ALLOWED' })
      throw new EdgeMqError(`no such resource ${url.pathname}`, { code: 'NOT_FOUND_RESOURCE' })
    }
    handle().catch((err: unknown) => {
      // An oversize body is not read to its end: answer, then drop the connection.
      if (err instanceof TooLargeError && !res.headersSent) res.setHeader('connection', 'close')
      if (!(err instanceof EdgeMqError)) broker.log.warn({ err: (err as Error).message, path: url.pathname }, 'control API error')
      sendError(res, err)
    })
  }

  const server: Server = createServer(onRequest)
  server.listen(opts.port, opts.host ?? '127.0.0.1')
  await once(server, 'listening')
  const servers: (Server | HttpsServer)[] = [server]
  /** Upgraded (WebSocket) connections are no longer the HTTP server's to close. */
  const closers: (() => void)[] = []
  const closeAll = () => {
    for (const close of closers) close()
    return Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections()
            s.close(() => resolve())
          }),
      ),
    ).then(() => undefined)
  }
  let restPort: number | undefined
  if (opts.rest) {
    const { key, cert, ca, mqttOverWebSocket } = opts.rest
    // A client certificate is asked for (X.509 devices over wss) but never required (SAS, REST).
    const https = createHttpsServer({ key, cert, ...(ca ? { ca: [ca], requestCert: true, rejectUnauthorized: false } : {}) }, onRequest)
    https.on('tlsClientError', (err) => broker.log.debug({ err: err.message }, 'REST TLS handshake failed'))
    if (mqttOverWebSocket) closers.push(serveMqttOverWebSocket(https, mqttOverWebSocket))
    try {
      restPort = await listenWithHints(https, opts.rest.port, {
        host: opts.rest.host,
        what: 'rest',
        flag: '--rest-port',
        privilegedHint: 'or redirect 443 to a high --rest-port with iptables',
      })
    } catch (err) {
      await closeAll()
      throw err
    }
    servers.push(https)
  }
  return { port: (server.address() as AddressInfo).port, restPort, close: closeAll }
}
