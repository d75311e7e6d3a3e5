/**
 * Typed errors for every expected failure. The CLI maps `exitCode` to the process exit
 * code (PRODUCT.md "Exit codes") and prints `message` (+ `hint`) as one clear sentence,
 * never a stack trace. Library users can switch on `code`.
 */
export type ExitCode = 1 | 2 | 3 | 4

export class EdgeMqError extends Error {
  readonly exitCode: ExitCode
  readonly code: string
  readonly hint?: string
  /** IoT Hub's error code for this error on the wire, when more precise than its class's (e.g. ModuleNotFound). */
  wireCode?: string

  constructor(message: string, opts: { exitCode?: ExitCode; code?: string; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = new.target.name
    this.exitCode = opts.exitCode ?? 1
    this.code = opts.code ?? 'EDGEMQ_ERROR'
    this.hint = opts.hint
  }
}

/** Bad flags or arguments (exit 1). */
export class UsageError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, code: 'USAGE', hint })
  }
}

/** A device, module, hub or file that does not exist (exit 1). */
export class NotFoundError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, code: 'NOT_FOUND', hint })
  }
}

/** Something that already exists (exit 1). */
export class ConflictError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, code: 'CONFLICT', hint })
  }
}

/** One issue found in an input document, with its JSON path. */
export interface DocumentIssue {
  path: string
  message: string
}

/** An input document (policy, $edgeHub twin, manifest, JSON flag) that is invalid (exit 2). */
export class InvalidDocumentError extends EdgeMqError {
  readonly issues: DocumentIssue[]
  constructor(message: string, issues: DocumentIssue[] = [], hint?: string) {
    super(message, { exitCode: 2, code: 'INVALID_DOCUMENT', hint })
    this.issues = issues
  }
}

/** A query (IoT Hub query language) that does not parse (exit 2; HTTP 400 as IoT Hub answers it). */
export class QueryParseError extends InvalidDocumentError {
  /** 1-based character position of the offending token. */
  readonly position: number
  constructor(message: string, position: number) {
    super(`query parse error: ${message}`, [], 'see the IoT Hub query language: SELECT * FROM devices WHERE tags.site = \'a\'')
    this.position = position
    this.wireCode = 'BadRequest'
  }
}

/** No broker answered on the home's recorded control port (exit 3). */
export class BrokerUnreachableError extends EdgeMqError {
  constructor(message = 'broker not reachable', hint = 'start it with `edgemq broker start` (or `--daemon`)') {
    super(message, { exitCode: 3, code: 'BROKER_UNREACHABLE', hint })
  }
}

/** A wait that ran out: method invoke, sub -W (exit 4). */
export class TimeoutError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 4, code: 'TIMEOUT', hint })
  }
}

/** A service request whose shared access policy lacks the right it needs (HTTP 401). */
export class UnauthorizedError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, code: 'UNAUTHORIZED', hint })
  }
}

/** A device or module that exists but is not connected (or not listening for methods). */
export class DeviceNotOnlineError extends NotFoundError {
  constructor(message: string, hint?: string) {
    super(message, hint)
    Object.defineProperty(this, 'code', { value: 'DEVICE_NOT_ONLINE' })
  }
}

/** An If-Match etag that is not the current one (HTTP 412). */
export class PreconditionFailedError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, code: 'PRECONDITION_FAILED', hint })
  }
}

/** A message or request body over a limit (HTTP 413). */
export class TooLargeError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, code: 'TOO_LARGE', hint })
  }
}

/** A device's cloud-to-device queue already holds its maximum (IoT Hub: 50) messages (HTTP 403). */
export class QueueFullError extends EdgeMqError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, code: 'QUEUE_FULL', hint })
  }
}

// ---- the one mapping between typed errors and the wire (HTTP status + IoT Hub error code) ----

/** What an error looks like on the wire: IoT Hub's body plus edgemq's typed code, issues and hint. */
export interface WireErrorBody {
  Message: string
  ExceptionMessage: string
  errorCode: string
  message: string
  /** edgemq's `EdgeMqError.code`, so a client rebuilds the same typed error (and exit code). */
  code: string
  issues?: DocumentIssue[]
  hint?: string
}

export interface WireError {
  status: number
  body: WireErrorBody
}

/** edgemq code → HTTP status and IoT Hub error code. Order of lookup: exact code, then class. */
const WIRE: Record<string, { status: number; errorCode: string }> = {
  INVALID_DOCUMENT: { status: 400, errorCode: 'ArgumentInvalid' },
  USAGE: { status: 400, errorCode: 'ArgumentInvalid' },
  UNAUTHORIZED: { status: 401, errorCode: 'IotHubUnauthorizedAccess' },
  NOT_FOUND: { status: 404, errorCode: 'DeviceNotFound' },
  DEVICE_NOT_ONLINE: { status: 404, errorCode: 'DeviceNotOnline' },
  CONFLICT: { status: 409, errorCode: 'DeviceAlreadyExists' },
  PRECONDITION_FAILED: { status: 412, errorCode: 'PreconditionFailed' },
  TOO_LARGE: { status: 413, errorCode: 'MessageTooLarge' },
  QUEUE_FULL: { status: 403, errorCode: 'DeviceMaximumQueueDepthExceeded' },
  TIMEOUT: { status: 504, errorCode: 'GatewayTimeout' },
  BROKER_UNREACHABLE: { status: 503, errorCode: 'ServiceUnavailable' },
  NOT_FOUND_RESOURCE: { status: 404, errorCode: 'NotFound' },
  METHOD_NOT_ALLOWED: { status: 405, errorCode: 'MethodNotAllowed' },
}

/** Sets the IoT Hub error code an error answers with (`DeviceNotFound` → `ModuleNotFound`, …). */
export function withWireCode<T extends EdgeMqError>(err: T, wireCode: string): T {
  err.wireCode = wireCode
  return err
}

/** Any thrown value → the HTTP answer for it. Unknown errors are 500 ServerError. */
export function toWireError(err: unknown): WireError {
  const e = err instanceof EdgeMqError ? err : undefined
  const code = e?.code ?? 'SERVER_ERROR'
  const map = WIRE[code] ?? { status: 500, errorCode: 'ServerError' }
  const message = err instanceof Error ? err.message : String(err)
  const ec = e?.wireCode ?? map.errorCode
  return {
    status: map.status,
    body: {
      Message: `ErrorCode:${ec};${message}`,
      ExceptionMessage: `Tracking ID:edgemq-${Date.now()} ErrorCode:${ec}`,
      errorCode: ec,
      message,
      code,
      ...(e instanceof InvalidDocumentError && e.issues.length > 0 ? { issues: e.issues } : {}),
      ...(e?.hint ? { hint: e.hint } : {}),
    },
  }
}

/** An HTTP error answer → the typed error that caused it (same class, exit code, issues, hint). */
export function fromWireError(status: number, body: unknown): EdgeMqError {
  const b = (body ?? {}) as Partial<WireErrorBody>
  const message = typeof b.message === 'string' ? b.message : typeof b.Message === 'string' ? b.Message : `HTTP ${status}`
  const hint = typeof b.hint === 'string' ? b.hint : undefined
  const code = typeof b.code === 'string' ? b.code : Object.entries(WIRE).find(([, w]) => w.status === status)?.[0]
  switch (code) {
    case 'INVALID_DOCUMENT':
      return new InvalidDocumentError(message, Array.isArray(b.issues) ? b.issues : [], hint)
    case 'USAGE':
      return new UsageError(message, hint)
    case 'UNAUTHORIZED':
      return new UnauthorizedError(message, hint)
    case 'NOT_FOUND':
      return new NotFoundError(message, hint)
    case 'DEVICE_NOT_ONLINE':
      return new DeviceNotOnlineError(message, hint)
    case 'CONFLICT':
      return new ConflictError(message, hint)
    case 'PRECONDITION_FAILED':
      return new PreconditionFailedError(message, hint ?? 'show the twin again and retry with its etag')
    case 'TOO_LARGE':
      return new TooLargeError(message, hint)
    case 'QUEUE_FULL':
      return new QueueFullError(message, hint)
    case 'TIMEOUT':
      return new TimeoutError(message, hint)
    case 'BROKER_UNREACHABLE':
      return new BrokerUnreachableError(message, hint)
    default:
      return new EdgeMqError(`broker answered ${status}: ${message}`, { hint })
  }
}

/**
 * edgemq code → AMQP error condition, as IoT Hub's AMQP endpoint answers and the azure-iothub SDK
 * translates them (amqp:not-found → DeviceNotFoundError, amqp:resource-limit-exceeded →
 * DeviceMaximumQueueDepthExceededError, …). Unknown errors are amqp:internal-error.
 */
const AMQP_CONDITIONS: Record<string, string> = {
  INVALID_DOCUMENT: 'com.microsoft:argument-error',
  USAGE: 'com.microsoft:argument-error',
  UNAUTHORIZED: 'amqp:unauthorized-access',
  NOT_FOUND: 'amqp:not-found',
  DEVICE_NOT_ONLINE: 'amqp:not-found',
  CONFLICT: 'com.microsoft:device-already-exists',
  PRECONDITION_FAILED: 'com.microsoft:precondition-failed',
  TOO_LARGE: 'amqp:link:message-size-exceeded',
  QUEUE_FULL: 'amqp:resource-limit-exceeded',
  TIMEOUT: 'com.microsoft:timeout',
  BROKER_UNREACHABLE: 'amqp:internal-error',
}

/** Any thrown value → the AMQP error (condition, description) to reject a delivery or detach a link with. */
export function toAmqpError(err: unknown): { condition: string; description: string } {
  const code = err instanceof EdgeMqError ? err.code : 'SERVER_ERROR'
  return { condition: AMQP_CONDITIONS[code] ?? 'amqp:internal-error', description: err instanceof Error ? err.message : String(err) }
}

// ---- the Device Provisioning Service's error body (MQTT responses and the DPS service REST API) ----

/** DPS answers `{errorCode, trackingId, message, timestampUtc}`: a numeric code, HTTP status × 1000 + detail. */
export interface DpsErrorBody {
  errorCode: number
  trackingId: string
  message: string
  timestampUtc: string
}

/** edgemq code → HTTP status and DPS error code (DPS's documented codes where one exists). */
const DPS_WIRE: Record<string, { status: number; errorCode: number }> = {
  INVALID_DOCUMENT: { status: 400, errorCode: 400004 },
  USAGE: { status: 400, errorCode: 400004 },
  UNAUTHORIZED: { status: 401, errorCode: 401002 },
  NOT_FOUND: { status: 404, errorCode: 404201 },
  NOT_FOUND_RESOURCE: { status: 404, errorCode: 404001 },
  METHOD_NOT_ALLOWED: { status: 405, errorCode: 405001 },
  CONFLICT: { status: 409, errorCode: 409201 },
  PRECONDITION_FAILED: { status: 412, errorCode: 412002 },
  TOO_LARGE: { status: 413, errorCode: 413001 },
}

/** Any thrown value → DPS's answer for it; a numeric `wireCode` (e.g. 404202) overrides the class's code. */
export function toDpsWireError(err: unknown, trackingId: string): { status: number; body: DpsErrorBody } {
  const e = err instanceof EdgeMqError ? err : undefined
  const map = DPS_WIRE[e?.code ?? ''] ?? { status: 500, errorCode: 500000 }
  const code = e?.wireCode && /^\d{6}$/.test(e.wireCode) ? Number(e.wireCode) : map.errorCode
  return {
    status: Math.floor(code / 1000),
    body: { errorCode: code, trackingId, message: err instanceof Error ? err.message : String(err), timestampUtc: new Date().toISOString() },
  }
}
