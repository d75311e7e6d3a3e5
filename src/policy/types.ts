/** Types shared by the policy engine (PROTOCOL.md §3). */
import type { DocumentIssue } from '../errors.js'

/** The authenticated client a decision is about. `clientId` is `deviceId` or `deviceId/moduleId`. */
export interface Identity {
  clientId: string
  deviceId: string
  moduleId?: string
}

export type Operation = 'connect' | 'publish' | 'subscribe'

/** Operation names as written in policy documents. */
export const OPERATION_NAMES = ['mqtt:connect', 'mqtt:publish', 'mqtt:subscribe'] as const
export type OperationName = (typeof OPERATION_NAMES)[number]

export function operationName(op: Operation): OperationName {
  return `mqtt:${op}`
}

/** One rule of a statement, as written in `$edgeHub` desired `mqttBroker.authorizations`. */
export interface AuthorizationRule {
  operations: string[]
  resources?: string[]
}

/** One statement of the policy. */
export interface AuthorizationStatement {
  identities: string[]
  allow?: AuthorizationRule[]
  deny?: AuthorizationRule[]
  description?: string
}

export type Authorizations = AuthorizationStatement[]

/** The statement that decided, for `policy check` output. */
export interface DecidingStatement {
  readonly index: number
  readonly description?: string
}

/**
 * Result of a decision. `statement` is null for default deny and for the built-in rules
 * (own IoT Hub topics, `$`-topic ban, invalid topics) — PRODUCT.md `policy check -o json`.
 * Decisions are cached and shared: treat them as immutable.
 */
export interface Decision {
  readonly decision: 'allow' | 'deny'
  readonly statement: DecidingStatement | null
  readonly reason: string
}

/** A validation finding. Errors make a document invalid; warnings are advice only. */
export interface PolicyIssue extends DocumentIssue {
  severity: 'error' | 'warning'
}
