/** IoT Edge deployment manifests: parse + validate (manifest.ts), apply to the hub (apply.ts), automatic deployments with target conditions (edge-deployments.ts), a device's modules as a manifest's content (export.ts). */
export { parseDeploymentManifest, type DeploymentManifest, type ManifestIssue, type ManifestModule } from './manifest.js'
export { applyDeployment, deployedModuleEnv, edgeHubDocument, MANAGED_BY_EDGE, type DeploymentResult } from './apply.js'
export {
  createEdgeDeployment,
  deleteEdgeDeployment,
  getEdgeDeployment,
  listEdgeDeployments,
  showEdgeDeploymentMetric,
  updateEdgeDeployment,
  type CreateEdgeDeploymentInput,
  type EdgeDeployment,
  type EdgeDeploymentState,
} from './edge-deployments.js'
export { exportModules } from './export.js'
