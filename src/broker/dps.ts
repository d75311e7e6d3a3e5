/**
 * The DPS MQTT endpoint on the broker's TLS port (src/dps/topics.ts has the protocol): answers a
 * registration connection's register and operation-status requests in its private namespace
 * (`$edgemq/<client>/$dps/registrations/res/…`, rewritten back on delivery, as twin responses
 * are), so one device never sees another's. Attestation and allocation live in src/dps/.
 *
 * Register: the proof is checked at once (401002 etc. answer the request itself, as DPS does);
 * allocation runs then too, and its outcome waits under an operation id the device polls for
 * after `retry-after` (202 `assigning`, then 200 `assigned` or `failed`), as with DPS.
 */
import { randomUUID } from 'node:crypto'

import type { Logger } from 'pino'

import type { HubContext } from '../config/home.js'
import { Dps, formatDpsResponseTopic, type DpsRequest, type TwinWriter } from '../dps/index.js'
import { NotFoundError, toDpsWireError, UsageError, withWireCode } from '../errors.js'
import type { BrokerPublish } from './host.js'
import { privateTopic } from './pipeline.js'
import type { Actor } from './session.js'

export interface DpsHost {
  readonly ctx: HubContext
  readonly log: Logger
  publish(packet: BrokerPublish): Promise<void>
  /** Twin writes go through the IoT Hub primitives, so a connected device sees desired changes. */
  writeTwin: TwinWriter
  caPem(): string | undefined
}

/** Seconds a device waits before polling (DPS sends 3; the outcome is ready at once here). */
export const DPS_RETRY_AFTER_SECS = 1
/** How long an operation's outcome can be polled for. */
const OPERATION_TTL_MS = 5 * 60_000

interface Operation {
  registrationId: string
  status: number
  body: unknown
  expiresAt: number
}

export class DpsEndpoint {
  private readonly operations = new Map<string, Operation>()

  constructor(private readonly host: DpsHost) {}

  /** The service over the hub as it is now (the hub record follows live changes). */
  service(): Dps {
    const dps = new Dps(this.host.ctx)
    dps.hubCaPem = this.host.caPem()
    return dps
  }

  answer(actor: Actor, request: DpsRequest, payload: Buffer): void {
    const work = request.kind === 'dps-register' ? this.register(actor, request.rid, payload) : this.operationStatus(actor, request.rid, request.operationId)
    work.catch((err: unknown) => this.host.log.warn({ client: actor.identity.clientId, err: (err as Error).message }, 'DPS request failed'))
  }

  close(): void {
    this.operations.clear()
  }

  private respond(clientId: string, status: number, rid: string, body: unknown, retryAfter?: number): Promise<void> {
    return this.host.publish({ topic: privateTopic(clientId, formatDpsResponseTopic(status, rid, retryAfter)), payload: JSON.stringify(body), qos: 0 })
  }

  private async register(actor: Actor, rid: string, payload: Buffer): Promise<void> {
    const creds = actor.dps
    if (!creds) return
    const clientId = actor.identity.clientId
    const trackingId = randomUUID()
    try {
      const body = parseRequestBody(payload)
      if (body.registrationId !== undefined && body.registrationId !== creds.registrationId) {
        throw new UsageError(`registrationId "${String(body.registrationId)}" in the request is not the connection's "${creds.registrationId}"`)
      }
      const dps = this.service()
      const attested = await dps.attest(creds)
      const operationId = Dps.operationId()
      let outcome: { status: number; body: unknown }
      try {
        const registrationState = await dps.allocate(attested, this.host.writeTwin, body.payload)
        outcome = { status: 200, body: { operationId, status: 'assigned', registrationState } }
        this.host.log.info({ client: clientId, deviceId: registrationState.deviceId, substatus: registrationState.substatus }, 'DPS registration assigned')
      } catch (err) {
        const w = toDpsWireError(err, trackingId)
        const t = new Date().toISOString()
        const registrationState = { registrationId: creds.registrationId, createdDateTimeUtc: t, status: 'failed', errorCode: w.body.errorCode, errorMessage: w.body.message, lastUpdatedDateTimeUtc: t }
        outcome = { status: 200, body: { operationId, status: 'failed', registrationState } }
        this.host.log.info({ client: clientId, reason: w.body.message }, 'DPS registration failed')
      }
      this.sweep()
      this.operations.set(operationId, { registrationId: creds.registrationId, ...outcome, expiresAt: Date.now() + OPERATION_TTL_MS })
      await this.respond(clientId, 202, rid, { operationId, status: 'assigning' }, DPS_RETRY_AFTER_SECS)
    } catch (err) {
      const w = toDpsWireError(err, trackingId)
      this.host.log.info({ client: clientId, status: w.status, errorCode: w.body.errorCode, reason: w.body.message }, 'DPS registration refused')
      await this.respond(clientId, w.status, rid, w.body)
    }
  }

  private async operationStatus(actor: Actor, rid: string, operationId: string): Promise<void> {
    const clientId = actor.identity.clientId
    const op = this.operations.get(operationId)
    // Another registration's operation is as unknown to this one as a made-up id.
    if (!op || op.registrationId !== actor.dps?.registrationId || op.expiresAt < Date.now()) {
      const w = toDpsWireError(withWireCode(new NotFoundError(`operation "${operationId}" not found`), '404203'), randomUUID())
      return this.respond(clientId, 404, rid, w.body)
    }
    await this.respond(clientId, op.status, rid, op.body)
  }

  private sweep(): void {
    const now = Date.now()
    for (const [id, op] of this.operations) if (op.expiresAt < now) this.operations.delete(id)
  }
}

function parseRequestBody(payload: Buffer): { registrationId?: unknown; payload?: unknown } {
  const text = payload.toString('utf8').trim()
  if (text === '') return {}
  try {
    const v = JSON.parse(text) as unknown
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as { registrationId?: unknown; payload?: unknown }
  } catch {
    /* answered below */
  }
  throw new UsageError('the register request body is not a JSON object ({"registrationId": …})')
}
