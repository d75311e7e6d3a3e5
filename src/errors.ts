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
