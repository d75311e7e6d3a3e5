/** IoT Edge deployment manifests: parse + validate (manifest.ts), apply to the hub (apply.ts). */
export { parseDeploymentManifest, type DeploymentManifest, type ManifestIssue, type ManifestModule } from './manifest.js'
export { applyDeployment, deployedModuleEnv, edgeHubDocument, MANAGED_BY_EDGE, type DeploymentResult } from './apply.js'
