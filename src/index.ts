/**
 * edgemq as a library: the same modules the CLI uses, typed. Most tests need only `startHub()`:
 *
 *   import { startHub } from 'edgemq'
 *   const hub = await startHub()                 // in memory, free ports
 *   await hub.createDevice('dev1')
 *   const cs = await hub.deviceConnectionString('dev1')
 *   …
 *   await hub.close()
 */

// The emulator: a hub in this process.
export * from './emulator/index.js'

// Errors (switch on `code`; the CLI maps `exitCode`).
export {
  BrokerUnreachableError,
  ConflictError,
  EdgeMqError,
  InvalidDocumentError,
  NotFoundError,
  QueryParseError,
  TimeoutError,
  UsageError,
  type DocumentIssue,
  type ExitCode,
} from './errors.js'

// Homes, registry and stores.
export { initHub, openHub, resolveHome, type HubContext, type OpenHubOptions } from './config/home.js'
export { Registry, generateKey, type CreateDeviceInput, type CreateModuleInput, type UpdateDeviceInput } from './registry/registry.js'
export { SqliteStore } from './registry/sqlite-store.js'
export type { AuthType, DeviceRecord, HubRecord, IdentityStatus, ModuleRecord, ServicePolicy, Store, TwinKey, TwinRecord } from './registry/types.js'
export { exportHub, importHub, type HubExport, type ImportResult } from './registry/export.js'

// SAS tokens.
export { buildSasToken, parseSasToken, verifySasToken, deviceResource, hubHostName, type BuildSasOptions, type SasFields, type SasVerifyResult } from './sas/index.js'

// Authorization policy: validate, compile, decide.
export {
  compilePolicy,
  identityFromClientId,
  validatePolicy,
  CompiledPolicy,
  IdentityPolicy,
  type Authorizations,
  type AuthorizationStatement,
  type Decision,
  type Identity,
  type JsonObject,
  type Operation,
  type PolicyIssue,
} from './policy/index.js'

// The broker, for callers assembling their own.
export { EdgeBroker, startEdgeBroker, type EdgeBrokerOptions } from './broker/broker.js'
export type { HubEvent, MethodResult } from './broker/iothub.js'
// The AMQP endpoint (C2D and feedback for azure-iothub's Client; `broker.amqp.route()` for more addresses).
export type { AmqpLinkContext, AmqpListener, AmqpRoute } from './transports/amqp.js'
export type { FeedbackAck, FeedbackRecord, FeedbackStatus } from './iothub/index.js'
export { setEdgeHubDesired, type SetEdgeHubResult } from './service/edgehub.js'

// The Device Provisioning Service (hub.dps on a running hub).
export {
  Dps,
  deriveDeviceKey,
  type DeviceRegistrationState,
  type EnrollmentGroup,
  type IndividualEnrollment,
} from './dps/index.js'

// PKI.
export { createInMemoryHubPki, ensureHubPki, issueDeviceCert, selfSignedDeviceCert, type HubPki, type IssuedCert } from './pki/index.js'

// Twins.
export type { ServiceTwinJson } from './twin/index.js'

// The IoT Hub query language over device and module twins.
export { parseQuery, runQuery, queryAll, type ParsedQuery, type QueryDocument, type QueryOptions, type QueryPage, type QuerySource } from './query/index.js'

// IoT Edge modules (issue 11): deployment manifests, module environments, the workload API.
export { applyDeployment, parseDeploymentManifest, type DeploymentManifest, type DeploymentResult, type ManifestIssue } from './deployment/index.js'
export { formatEnvironment, moduleEnvironment, startWorkloadServer, type EnvMode, type EnvShell, type ModuleEnvironment, type WorkloadServer } from './workload/index.js'
