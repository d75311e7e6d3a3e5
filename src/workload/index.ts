/** IoT Edge module environments: the workload API and the `module env` / `module run` environment. */
export { startWorkloadServer, signDigest, WORKLOAD_API_VERSION, WORKLOAD_API_VERSIONS, type WorkloadServer, type WorkloadServerOptions } from './server.js'
export { moduleEnvironment, childEnvironment, formatEnvironment, GATEWAY_HOST, type EnvMode, type EnvShell, type ModuleEnvironment } from './env.js'
