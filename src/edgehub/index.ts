/**
 * The `$edgeHub` desired document (PRODUCT.md "Edge hub configuration"): parse either shape,
 * validate, merge patches, typed view. Pure; storage and hot reload live elsewhere.
 */
export {
  DEFAULT_TIME_TO_LIVE_SECS,
  isSupportedSchemaVersion,
  mergeDesiredPatch,
  parseEdgeHubDocument,
  validateEdgeHubDesired,
  type EdgeHubIssue,
} from './document.js'
export {
  DEFAULT_AUTHORIZATIONS,
  assertNoErrors,
  loadEdgeHubConfig,
  loadPolicyDocument,
  toEdgeHubConfig,
  type BridgeConfig,
  type BridgeDirection,
  type BridgeSetting,
  type EdgeHubConfig,
} from './config.js'
