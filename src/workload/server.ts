/**
 * An IoT-Edge-compatible workload API (what iotedged serves to modules on `IOTEDGE_WORKLOADURI`),
 * enough for the official SDKs' `ModuleClient.fromEnvironment()`:
 *   POST /modules/{m}/genid/{genid}/sign?api-version=2018-06-28  {keyId, algo: "HMACSHA256", data} → {digest}
 *   GET  /trust-bundle?api-version=2018-06-28                     → {certificate: <CA PEM>}
 * Errors use iotedged's shape, `{"message": "…"}` (edgelet-http-workload): 404 "Module not found"
 * for an unknown module, a generation id that is not the module's current one, or an unknown key;
 * 400 "Bad body" / "Invalid API version"; 422 "Invalid base64 string".
 *
 * Security: iotedged keys a module's secrets by name + generation id (`primary<genid>`), so a
 * module can only get signatures from its own identity, and a re-created module (new genid)
 * stops working with the old environment. edgemq does the same, serves loopback only, and refuses
 * requests that a browser could forge (an `Origin` header, or a Host that is not a loopback name —
 * DNS rebinding).
 */
import { createHmac } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

import type { ModuleRecord } from '../registry/types.js'

/** Workload API versions iotedged has published; the Node, C# and Python SDKs send 2018-06-28 or 2019-01-30. */
export const WORKLOAD_API_VERSIONS = ['2018-06-28', '2019-01-30', '2019-10-22', '2019-11-05', '2020-07-07', '2020-10-10', '2021-12-07', '2022-08-03']
export const WORKLOAD_API_VERSION = '2018-06-28'

const MAX_BODY = 64 * 1024
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1'])

export interface WorkloadServerOptions {
  /** The edge device whose modules this API serves (iotedged serves one device). */
  edgeDeviceId: () => string
  lookupModule(deviceId: string, moduleId: string): Promise<ModuleRecord | undefined>
  /** The CA PEM modules must trust (the hub CA). */
  trustBundle(): Promise<string>
  host?: string
  /** 0 = a free port (default). */
  port?: number
  /** Log sink (pino-like). */
  log?: { info(obj: object, msg: string): void; debug(obj: object, msg: string): void }
}

export interface WorkloadServer {
  port: number
  /** `http://127.0.0.1:<port>/`: the IOTEDGE_WORKLOADURI value. */
  uri: string
  close(): Promise<void>
}

class WorkloadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new WorkloadError(413, `Bad body\n\tcaused by: request body larger than ${MAX_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

interface SignRequest {
  keyId: string
  algo: string
  data: string
}

function parseSignRequest(text: string): SignRequest {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new WorkloadError(400, `Bad body\n\tcaused by: ${(err as Error).message}`)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new WorkloadError(400, 'Bad body\n\tcaused by: expected an object {"keyId", "algo", "data"}')
  const o = v as Record<string, unknown>
  for (const k of ['keyId', 'algo', 'data'] as const) {
    if (typeof o[k] !== 'string') throw new WorkloadError(400, `Bad body\n\tcaused by: missing field \`${k}\``)
  }
  if (o.algo !== 'HMACSHA256') throw new WorkloadError(400, `Bad body\n\tcaused by: unknown variant \`${String(o.algo)}\`, expected \`HMACSHA256\``)
  return { keyId: o.keyId as string, algo: o.algo, data: o.data as string }
}

/** The HMAC-SHA256 of `data` with a base64 key, base64: what iotedged's key store returns. */
export function signDigest(keyBase64: string, data: Buffer): string {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(data).digest('base64')
}

export async function startWorkloadServer(opts: WorkloadServerOptions): Promise<WorkloadServer> {
  const host = opts.host ?? '127.0.0.1'

  const sign = async (req: IncomingMessage, moduleId: string, genId: string): Promise<{ digest: string }> => {
    const request = parseSignRequest(await readBody(req))
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(request.data) || request.data.length % 4 !== 0) {
      throw new WorkloadError(422, 'Invalid base64 string\n\tcaused by: the data to sign is not valid base64')
    }
    const deviceId = opts.edgeDeviceId()
    // The runtime modules are edgemq itself: their keys are not handed out.
    const mod = moduleId.startsWith('$') ? undefined : await opts.lookupModule(deviceId, moduleId)
    const notFound = (why: string) => new WorkloadError(404, `Module not found\n\tcaused by: ${why}`)
    if (!mod) throw notFound(`no module "${moduleId}" on device "${deviceId}"`)
    // iotedged looks the key up as `<keyId><genid>`: a stale or guessed generation id finds nothing.
    if (mod.generationId !== genId) throw notFound(`module "${moduleId}" has no key "${request.keyId}" for generation id "${genId}"`)
    const key = request.keyId === 'primary' ? mod.primaryKey : request.keyId === 'secondary' ? mod.secondaryKey : undefined
    if (!key) throw notFound(`module "${moduleId}" has no key "${request.keyId}"`)
    return { digest: signDigest(key, Buffer.from(request.data, 'base64')) }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const hostHeader = (req.headers.host ?? 'localhost').replace(/:\d+$/, '').toLowerCase()
    if (req.headers.origin !== undefined || !LOOPBACK_HOSTS.has(hostHeader)) {
      throw new WorkloadError(403, 'Forbidden\n\tcaused by: the workload API answers local module processes only (no browser origins, loopback Host only)')
    }
    const version = url.searchParams.get('api-version')
    if (!version || !WORKLOAD_API_VERSIONS.includes(version)) throw new WorkloadError(400, `Invalid API version "${version ?? ''}"`)
    const signMatch = /^\/modules\/([^/]+)\/genid\/([^/]+)\/sign$/.exec(url.pathname)
    if (signMatch) {
      if (req.method !== 'POST') throw new WorkloadError(405, `Method not allowed: ${req.method ?? ''}`)
      let moduleId: string
      let genId: string
      try {
        moduleId = decodeURIComponent(signMatch[1])
        genId = decodeURIComponent(signMatch[2])
      } catch {
        throw new WorkloadError(400, 'Bad parameter\n\tcaused by: invalid percent-encoding in the path')
      }
      try {
        const body = await sign(req, moduleId, genId)
        opts.log?.debug({ module: moduleId }, 'workload API: signed for a module')
        reply(res, 200, body)
      } catch (err) {
        if (err instanceof WorkloadError) opts.log?.info({ module: moduleId, status: err.status, reason: err.message.replace(/\n\t/g, ' ') }, 'workload API: sign request refused')
        throw err
      }
      return
    }
    if (url.pathname === '/trust-bundle') {
      if (req.method !== 'GET') throw new WorkloadError(405, `Method not allowed: ${req.method ?? ''}`)
      reply(res, 200, { certificate: await opts.trustBundle() })
      return
    }
    throw new WorkloadError(404, `Not found: ${url.pathname}`)
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof WorkloadError) return reply(res, err.status, { message: err.message })
      reply(res, 500, { message: `Internal server error\n\tcaused by: ${(err as Error).message}` })
    })
  })
  server.listen(opts.port ?? 0, host)
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    port,
    uri: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
