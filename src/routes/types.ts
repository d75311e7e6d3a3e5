/**
 * edgeHub routes (PROTOCOL.md §5): `FROM <source> [WHERE <condition>] INTO <sink>`.
 * Grammar and lexical rules follow Azure/iotedge `Microsoft.Azure.Devices.Routing.Core`
 * (`grammar/Route.g4`, `GrammarLexer.g4`); the condition language is IoT Hub's message routing
 * query syntax (learn.microsoft.com/azure/iot-hub/iot-hub-devguide-routing-query-syntax).
 */
import type { SystemProperties } from '../iothub/propertyBag.js'

export type RouteSource =
  /** `/*`: every message. */
  | { kind: 'all' }
  /** `/messages/*`: every device-to-cloud message, from devices and modules. */
  | { kind: 'messages' }
  /** `/messages/modules/*`: messages sent by any module. */
  | { kind: 'modules' }
  /** `/messages/modules/<m>/*`: anything module <m> sends. */
  | { kind: 'module'; moduleId: string }
  /** `/messages/modules/<m>/outputs/*`: module <m>, any named output. */
  | { kind: 'module-outputs'; moduleId: string }
  /** `/messages/modules/<m>/outputs/<o>`: module <m>, output <o>. */
  | { kind: 'module-output'; moduleId: string; outputName: string }

export type RouteSink =
  /** `$upstream`: the parent broker, or the hub's own event stream (PROTOCOL.md §5). */
  | { kind: 'upstream' }
  /** `BrokeredEndpoint("/modules/<m>/inputs/<i>")`. */
  | { kind: 'module-input'; moduleId: string; inputName: string }

/** A value in the condition language (JSON-like; `undefined` = missing / unknown). */
export type QueryValue = string | number | boolean | null | undefined | QueryValue[] | { [key: string]: QueryValue }

export type ComparisonOp = '=' | '<>' | '<' | '>' | '<=' | '>='

/** Condition AST. `col` is the 1-based column of the node in the route text. */
export type Expr =
  | { type: 'literal'; value: QueryValue; col: number }
  /** `$name` (canonical system property name) or `$body.a.b` (name 'body', path ['a','b']). */
  | { type: 'system'; name: string; path: string[]; col: number }
  /** A bare name: an application property. */
  | { type: 'app'; name: string; col: number }
  | { type: 'call'; fn: string; args: Expr[]; col: number }
  | { type: 'not'; operand: Expr; col: number }
  | { type: 'and' | 'or'; left: Expr; right: Expr; col: number }
  | { type: 'compare'; op: ComparisonOp; left: Expr; right: Expr; col: number }

export interface Route {
  /** The key in `$edgeHub` desired `routes` (absent for parseRoute on bare text). */
  name?: string
  /** The route text as written. */
  text: string
  source: RouteSource
  condition?: Expr
  sink: RouteSink
  /** Schema 1.1+ object form `{ "route": …, "priority": 0-9, "timeToLiveSecs": n }`. */
  priority?: number
  timeToLiveSecs?: number
}

/** What routes look at: a device-to-cloud message as edgeHub received it. */
export interface RoutableMessage {
  /** The sending identity (`$connectionDeviceId`). */
  deviceId: string
  /** Set when a module sent it (`$connectionModuleId`). */
  moduleId?: string
  /** The module output (`$.on`); falls back to `systemProperties.outputName`. */
  outputName?: string
  properties: Record<string, string>
  systemProperties: SystemProperties
  body: Uint8Array | string
  /** ISO time the hub received it (`$enqueuedTime`). */
  enqueuedTime?: string
}
