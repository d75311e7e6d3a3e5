/**
 * The authorization policy engine (PROTOCOL.md §3): lenient JSON → validate → compile →
 * decide. Pure: no I/O, no broker. The broker asks `policy.forIdentity(id)` once per session
 * and then `canConnect()`, `canPublish(topic)`, `canSubscribe(filter)` (cached).
 *
 * Semantics chosen where §3 leaves room (tests pin each one):
 * - Order: built-in rules first — a client's own IoT Hub topics are always allowed (a policy
 *   deny cannot take them away); other `$` topics are always denied (a policy allow cannot
 *   grant them); then statements in document order, deny rules before allow rules; default deny.
 * - Identities: a client id, or a variable as the WHOLE entry: `{{iot:identity}}` and
 *   `{{mqtt:client_id}}` match every client, `{{iot:device_id}}` every device client,
 *   `{{iot:module_id}}` every module client.
 * - Resources: variables substitute literal text (`{{iot:identity}}` of `d/m` spans two levels);
 *   a resource that needs `{{iot:module_id}}` is skipped for a device client (the other
 *   resources of the same rule still apply).
 * - SUBSCRIBE is exact: allowed iff every topic the filter matches is allowed (decide.ts).
 * - mqtt:connect ignores resources. Errors: empty resource "", publish/subscribe rule without
 *   resources, unknown properties in statements/rules. Warnings: resources on a connect-only
 *   rule, allow on a `$…` resource.
 */
export { compilePolicy, CompiledPolicy, type CompiledRule, type CompiledStatement } from './compile.js'
export { IdentityPolicy } from './decide.js'
export { parseLenientJson, isJsonObject, lineColumn, type JsonValue, type JsonObject } from './lenient-json.js'
export { pathIndex, pathKey } from './json-path.js'
export { SUPPORTED_VARIABLES, VARIABLE_NAMES } from './template.js'
export { isDollarTopic, topicFilterError, topicMatches, topicNameError } from './topic.js'
export {
  OPERATION_NAMES,
  operationName,
  type AuthorizationRule,
  type AuthorizationStatement,
  type Authorizations,
  type DecidingStatement,
  type Decision,
  type Identity,
  type Operation,
  type OperationName,
  type PolicyIssue,
} from './types.js'
export { validatePolicy } from './validate.js'

import type { Identity } from './types.js'

/** Identity from an MQTT client id: `dev` → device, `dev/mod` → module (PROTOCOL.md §1). */
export function identityFromClientId(clientId: string): Identity {
  const slash = clientId.indexOf('/')
  if (slash < 0) return { clientId, deviceId: clientId }
  return { clientId, deviceId: clientId.slice(0, slash), moduleId: clientId.slice(slash + 1) }
}
