/**
 * The authorization policy engine (PROTOCOL.md §3): lenient JSON → validate → compile →
 * decide. Pure: no I/O, no broker. The broker asks `policy.forIdentity(id)` once per session
 * and then `canConnect()`, `canPublish(topic)`, `canSubscribe(filter)` (cached).
 */
export { compilePolicy, CompiledPolicy, type CompiledRule, type CompiledStatement } from './compile.js'
export { IdentityPolicy } from './decide.js'
export { parseLenientJson, isJsonObject, lineColumn, type JsonValue, type JsonObject } from './lenient-json.js'
export { pathIndex, pathKey } from './json-path.js'
export { ownIotHubTopics } from './builtin.js'
export { SUPPORTED_VARIABLES, VARIABLE_NAMES } from './template.js'
export { isDollarTopic, isValidTopicFilter, isValidTopicName, topicFilterError, topicMatches, topicNameError } from './topic.js'
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
