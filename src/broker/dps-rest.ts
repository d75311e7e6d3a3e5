/**
 * The DPS service REST API (api-version 2021-10-01) the `azure-iot-provisioning-service` SDK
 * uses, on the same HTTPS `--rest-port` as IoT Hub's REST (the SDK dials 443 on the connection
 * string's HostName). Authenticated with a SAS token of a DPS policy (`provisioningserviceowner`),
 * errors in DPS's body shape (`{errorCode, trackingId, message, timestampUtc}`).
 *   PUT|GET|DELETE /enrollments/{id}         POST /enrollments/query     POST /enrollments/{id}/attestationmechanism
 *   POST           /enrollments[/]           (bulk: create, update, updateIfMatchETag, delete)
 *   PUT|GET|DELETE /enrollmentGroups/{id}    POST /enrollmentGroups/query
 *   GET|DELETE     /registrations/{id}       POST /registrations/{groupId}/query
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

import type { Dps } from '../dps/index.js'
import { EdgeMqError, toDpsWireError } from '../errors.js'
import type { RestIo } from './registry-rest.js'

/** Paths this API owns (no IoT Hub REST path starts like these). */
export function isDpsRestPath(pathname: string): boolean {
  return /^\/(enrollments|enrollmentgroups|registrations)(\/|$)/i.test(pathname)
}

type Handler = (dps: Dps, req: IncomingMessage, id: string) => Promise<{ status: number; body?: unknown }>

const ok = (body: unknown) => ({ status: 200, body })
const ifMatch = (req: IncomingMessage) => (typeof req.headers['if-match'] === 'string' ? req.headers['if-match'] : undefined)

function routes(io: RestIo): [string, RegExp, Handler][] {
  return [
    ['POST', /^\/enrollments\/?$/i, async (dps, req) => ok(await dps.bulkEnrollments(await io.readJson(req)))],
    ['POST', /^\/enrollments\/query$/i, async (dps) => ok(await dps.listEnrollments())],
    ['POST', /^\/enrollments\/([^/]+)\/attestationmechanism$/i, async (dps, _q, id) => ok((await dps.showEnrollment(id)).attestation)],
    ['PUT', /^\/enrollments\/([^/]+)$/i, async (dps, req, id) => ok(await dps.putEnrollment(await io.readJson(req), { id, ifMatch: ifMatch(req) }))],
    ['GET', /^\/enrollments\/([^/]+)$/i, async (dps, _q, id) => ok(await dps.showEnrollment(id))],
    ['DELETE', /^\/enrollments\/([^/]+)$/i, async (dps, req, id) => (await dps.deleteEnrollment(id, ifMatch(req)), { status: 204 })],
    ['POST', /^\/enrollmentgroups\/query$/i, async (dps) => ok(await dps.listEnrollmentGroups())],
    ['POST', /^\/enrollmentgroups\/([^/]+)\/attestationmechanism$/i, async (dps, _q, id) => ok((await dps.showEnrollmentGroup(id)).attestation)],
    ['PUT', /^\/enrollmentgroups\/([^/]+)$/i, async (dps, req, id) => ok(await dps.putEnrollmentGroup(await io.readJson(req), { id, ifMatch: ifMatch(req) }))],
    ['GET', /^\/enrollmentgroups\/([^/]+)$/i, async (dps, _q, id) => ok(await dps.showEnrollmentGroup(id))],
    ['DELETE', /^\/enrollmentgroups\/([^/]+)$/i, async (dps, req, id) => (await dps.deleteEnrollmentGroup(id, ifMatch(req)), { status: 204 })],
    ['POST', /^\/registrations\/([^/]+)\/query$/i, async (dps, _q, id) => ok(await dps.listRegistrations(id))],
    ['GET', /^\/registrations\/([^/]+)$/i, async (dps, _q, id) => ok(await dps.getRegistration(id))],
    ['DELETE', /^\/registrations\/([^/]+)$/i, async (dps, req, id) => (await dps.deleteRegistration(id, ifMatch(req)), { status: 204 })],
  ]
}

/** Serves one DPS REST request (the caller checked `isDpsRestPath`). */
export async function serveDpsRest(dps: Dps, req: IncomingMessage, res: ServerResponse, url: URL, io: RestIo, hubHostName: string): Promise<void> {
  try {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '')
    dps.verifyServiceToken(req.headers.authorization, [host, `${host}:${req.socket.localPort}`, hubHostName].filter(Boolean))
    let pathKnown = false
    for (const [method, re, handler] of routes(io)) {
      const m = re.exec(url.pathname)
      if (!m) continue
      pathKnown = true
      if (req.method !== method) continue
      let id = ''
      try {
        id = m[1] === undefined ? '' : decodeURIComponent(m[1])
      } catch {
        throw new EdgeMqError(`malformed percent-encoding in ${url.pathname}`, { code: 'USAGE' })
      }
      const r = await handler(dps, req, id)
      return io.send(res, r.status, r.body)
    }
    if (pathKnown) throw new EdgeMqError(`${req.method} is not supported on ${url.pathname}`, { code: 'METHOD_NOT_ALLOWED' })
    throw new EdgeMqError(`no such resource ${url.pathname}`, { code: 'NOT_FOUND_RESOURCE' })
  } catch (err) {
    const w = toDpsWireError(err, randomUUID())
    io.send(res, w.status, w.body)
  }
}
