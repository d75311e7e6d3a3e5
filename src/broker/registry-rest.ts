/**
 * The IoT Hub registry REST subset the official `azure-iothub` SDK's `Registry` uses
 * (api-version 2021-04-12): devices and modules, create / get / list / update / delete.
 *   PUT    /devices/{id}                create (no If-Match; 409 DeviceAlreadyExists) or update (If-Match: * | "<etag>")
 *   GET    /devices/{id}   GET /devices   list
 *   DELETE /devices/{id}                If-Match: * | "<etag>" (412 PreconditionFailed on mismatch)
 *   PUT|GET|DELETE /devices/{id}/modules/{m},  GET /devices/{id}/modules
 * Bodies and answers are IoT Hub's device/module JSON (`authentication.symmetricKey`, `capabilities.iotEdge`,
 * `deviceScope`/`parentScopes`). Mounted by control.ts on both the loopback control port and the HTTPS rest port.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

import { ConflictError, NotFoundError, PreconditionFailedError, UsageError, withWireCode } from '../errors.js'
import { deviceScope, deviceView, moduleView } from '../registry/views.js'
import { runQuery } from '../query/index.js'
import { twinQuerySource } from '../service/twin-view.js'
import type { AuthType, DeviceRecord, IdentityStatus, ModuleRecord } from '../registry/types.js'
import type { ServiceHost } from './host.js'
import type { ServiceRight } from '../registry/rights.js'

export type RestHandler = (req: IncomingMessage, res: ServerResponse, m: string[], url: URL) => Promise<void>
/** Methods (`GET|PUT`), path, the right the caller's policy needs, handler. */
export type RestRoute = [string, RegExp, ServiceRight, RestHandler]

/** What control.ts lends these handlers: its body reader and its answer writer. */
export interface RestIo {
  readJson(req: IncomingMessage): Promise<Record<string, unknown>>
  send(res: ServerResponse, status: number, body?: unknown): void
}

const badRequest = (message: string) => new UsageError(message)
const deviceNotFound = (deviceId: string) => new NotFoundError(`Device '${deviceId}' not found`)
const moduleNotFound = (deviceId: string, moduleId: string) => withWireCode(new NotFoundError(`Module '${moduleId}' on device '${deviceId}' not found`), 'ModuleNotFound')

interface AuthenticationJson {
  type?: string
  symmetricKey?: { primaryKey?: string | null; secondaryKey?: string | null } | null
  x509Thumbprint?: { primaryThumbprint?: string | null; secondaryThumbprint?: string | null } | null
}

const AUTH_TYPES: Record<string, AuthType> = { sas: 'sas', selfSigned: 'selfSigned', certificateAuthority: 'certificateAuthority' }

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function unquote(etag: string | string[] | undefined): string | undefined {
  if (typeof etag !== 'string') return undefined
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
}

export function registryRoutes(broker: ServiceHost, io: RestIo): RestRoute[] {
  const { registry, store } = broker.ctx

  const authOf = (body: Record<string, unknown>): { auth: AuthType; keys: { primaryKey?: string; secondaryKey?: string; primaryThumbprint?: string; secondaryThumbprint?: string } } => {
    const a = (body.authentication ?? {}) as AuthenticationJson
    if (typeof a !== 'object' || a === null) throw badRequest('authentication must be an object')
    const auth = a.type === undefined ? 'sas' : AUTH_TYPES[a.type]
    if (!auth) throw badRequest(`authentication.type "${String(a.type)}" is not sas, selfSigned or certificateAuthority`)
    return {
      auth,
      keys: {
        primaryKey: str(a.symmetricKey?.primaryKey),
        secondaryKey: str(a.symmetricKey?.secondaryKey),
        primaryThumbprint: str(a.x509Thumbprint?.primaryThumbprint),
        secondaryThumbprint: str(a.x509Thumbprint?.secondaryThumbprint),
      },
    }
  }

  /** `deviceScope` (or `parentScopes[0]`) of a child names its parent edge device. */
  const parentFromScope = async (body: Record<string, unknown>, selfId: string): Promise<string | undefined> => {
    const scopes = [body.deviceScope, ...(Array.isArray(body.parentScopes) ? (body.parentScopes as unknown[]) : [])].filter((s): s is string => typeof s === 'string' && s !== '')
    for (const scope of scopes) {
      for (const d of await store.listDevices()) {
        if (d.edge && d.deviceId !== selfId && deviceScope(d) === scope) return d.deviceId
      }
    }
    return undefined
  }

  const statusOf = (body: Record<string, unknown>): IdentityStatus | undefined => {
    if (body.status === undefined || body.status === null) return undefined
    if (body.status !== 'enabled' && body.status !== 'disabled') throw badRequest('status must be "enabled" or "disabled"')
    return body.status
  }

  const deviceJson = async (d: DeviceRecord) => {
    const parent = d.parentId ? await store.getDevice(d.parentId) : undefined
    return deviceView(d, parent, { connectionState: broker.iothub.isConnected({ deviceId: d.deviceId }) ? 'Connected' : 'Disconnected' })
  }
  const moduleJson = (m: ModuleRecord) => moduleView(m, { connectionState: broker.iothub.isConnected({ deviceId: m.deviceId, moduleId: m.moduleId }) ? 'Connected' : 'Disconnected' })

  const checkIdMatches = (body: Record<string, unknown>, key: string, want: string) => {
    if (body[key] !== undefined && body[key] !== want) throw badRequest(`${key} "${String(body[key])}" in the body does not match "${want}" in the path`)
  }

  const checkEtag = (ifMatch: string | undefined, current: string, what: string) => {
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== current) throw new PreconditionFailedError(`etag "${ifMatch}" does not match the current etag of ${what}`)
  }

  const putDevice: RestHandler = async (req, res, m) => {
    const deviceId = m[0]
    const body = await io.readJson(req)
    checkIdMatches(body, 'deviceId', deviceId)
    const { auth, keys } = authOf(body)
    const status = statusOf(body)
    const edge = typeof (body.capabilities as { iotEdge?: unknown } | undefined)?.iotEdge === 'boolean' ? ((body.capabilities as { iotEdge: boolean }).iotEdge) : undefined
    const parentId = await parentFromScope(body, deviceId)
    const ifMatch = unquote(req.headers['if-match'])
    const existing = await store.getDevice(deviceId)
    if (ifMatch === undefined) {
      if (existing) throw new ConflictError(`A device with ID '${deviceId}' is already registered`)
      try {
        const d = await registry.createDevice({ deviceId, auth, ...keys, status, statusReason: str(body.statusReason), edge, parentId })
        return io.send(res, 200, await deviceJson(d))
      } catch (err) {
        if (err instanceof ConflictError) throw new ConflictError(`A device with ID '${deviceId}' is already registered`)
        throw err
      }
    }
    if (!existing) throw deviceNotFound(deviceId)
    checkEtag(ifMatch, existing.etag, `device '${deviceId}'`)
    if (auth !== existing.authType) throw badRequest(`changing authentication.type of '${deviceId}' is not supported; delete and re-create the device`)
    const d = await registry.updateDevice(deviceId, {
      ...keys,
      ...(status ? { status } : {}),
      ...(str(body.statusReason) ? { statusReason: str(body.statusReason) } : {}),
      ...(edge !== undefined ? { edge } : {}),
      // A body naming no parent scope clears the parent, as a full PUT does.
      parentId: parentId ?? null,
    })
    io.send(res, 200, await deviceJson(d))
  }

  const putModule: RestHandler = async (req, res, m) => {
    const [deviceId, moduleId] = m
    const body = await io.readJson(req)
    checkIdMatches(body, 'deviceId', deviceId)
    checkIdMatches(body, 'moduleId', moduleId)
    const { auth, keys } = authOf(body)
    if (auth !== 'sas') throw badRequest('modules authenticate with SAS keys only (as in IoT Edge)')
    const ifMatch = unquote(req.headers['if-match'])
    const existing = await store.getModule(deviceId, moduleId)
    if (ifMatch === undefined) {
      if (existing) throw withWireCode(new ConflictError(`A module with ID '${moduleId}' is already registered on device '${deviceId}'`), 'ModuleAlreadyExistsOnDevice')
      if (!(await store.getDevice(deviceId))) throw deviceNotFound(deviceId)
      const mod = await registry.createModule({ deviceId, moduleId, primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey, managedBy: str(body.managedBy) })
      return io.send(res, 200, moduleJson(mod))
    }
    if (!existing) throw moduleNotFound(deviceId, moduleId)
    checkEtag(ifMatch, existing.etag, `module '${deviceId}/${moduleId}'`)
    const next = await registry.updateModule(deviceId, moduleId, { primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey, managedBy: str(body.managedBy) })
    io.send(res, 200, moduleJson(next))
  }

  /** IoT Hub's query API: `{"query": "…"}`, paged by x-ms-max-item-count / x-ms-continuation. */
  const query: RestHandler = async (req, res) => {
    const body = await io.readJson(req)
    if (typeof body.query !== 'string') throw badRequest('the body must be {"query": "SELECT … FROM devices …"}')
    const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined)
    const page = await runQuery(twinQuerySource(broker.ctx, broker.iothub), body.query, {
      pageSize: header('x-ms-max-item-count'),
      continuationToken: header('x-ms-continuation'),
    })
    res.setHeader('x-ms-item-type', page.itemType)
    if (page.continuationToken) res.setHeader('x-ms-continuation', page.continuationToken)
    io.send(res, 200, page.items)
  }

  return [
    ['POST', /^\/devices\/query$/, 'RegistryRead', query],
    ['GET', /^\/devices\/?$/, 'RegistryRead', async (_q, res) => io.send(res, 200, await Promise.all((await registry.listDevices()).map(deviceJson)))],
    [
      'GET',
      /^\/devices\/([^/]+)$/,
      'RegistryRead',
      async (_q, res, m) => {
        const d = await store.getDevice(m[0])
        if (!d) throw deviceNotFound(m[0])
        io.send(res, 200, await deviceJson(d))
      },
    ],
    ['PUT', /^\/devices\/([^/]+)$/, 'RegistryWrite', putDevice],
    [
      'DELETE',
      /^\/devices\/([^/]+)$/,
      'RegistryWrite',
      async (req, res, m) => {
        const d = await store.getDevice(m[0])
        if (!d) throw deviceNotFound(m[0])
        checkEtag(unquote(req.headers['if-match']), d.etag, `device '${m[0]}'`)
        await registry.deleteDevice(m[0])
        io.send(res, 204)
      },
    ],
    [
      'GET',
      /^\/devices\/([^/]+)\/modules\/?$/,
      'RegistryRead',
      async (_q, res, m) => {
        if (!(await store.getDevice(m[0]))) throw deviceNotFound(m[0])
        io.send(res, 200, (await store.listModules(m[0])).map(moduleJson))
      },
    ],
    [
      'GET',
      /^\/devices\/([^/]+)\/modules\/([^/]+)$/,
      'RegistryRead',
      async (_q, res, m) => {
        const mod = await store.getModule(m[0], m[1])
        if (!mod) throw (await store.getDevice(m[0])) ? moduleNotFound(m[0], m[1]) : deviceNotFound(m[0])
        io.send(res, 200, moduleJson(mod))
      },
    ],
    ['PUT', /^\/devices\/([^/]+)\/modules\/([^/]+)$/, 'RegistryWrite', putModule],
    [
      'DELETE',
      /^\/devices\/([^/]+)\/modules\/([^/]+)$/,
      'RegistryWrite',
      async (req, res, m) => {
        const mod = await store.getModule(m[0], m[1])
        if (!mod) throw (await store.getDevice(m[0])) ? moduleNotFound(m[0], m[1]) : deviceNotFound(m[0])
        checkEtag(unquote(req.headers['if-match']), mod.etag, `module '${m[0]}/${m[1]}'`)
        if (!(await store.deleteModule(m[0], m[1]))) throw new NotFoundError(`module "${m[1]}" not found`)
        io.send(res, 204)
      },
    ],
  ]
}
