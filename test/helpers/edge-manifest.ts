/** IoT Edge deployment manifests for tests, in the shape the VS Code / az templates write. */

/** modulesContent with `$edgeAgent` listing `modules`, `$edgeHub` with `routes`, and module desired properties. */
export function manifest(opts: { modules: string[]; routes: Record<string, string>; desired?: Record<string, Record<string, unknown>>; edgeHubExtra?: Record<string, unknown> }) {
  const modules: Record<string, unknown> = {}
  for (const m of opts.modules) {
    modules[m] = { version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: `example.azurecr.io/${m}:1.0`, createOptions: '{}' }, env: { MODULE_ROLE: { value: m } } }
  }
  const content: Record<string, unknown> = {
    $edgeAgent: {
      'properties.desired': {
        schemaVersion: '1.1',
        runtime: { type: 'docker', settings: { minDockerVersion: 'v1.25', loggingOptions: '', registryCredentials: {} } },
        systemModules: {
          edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.2', createOptions: '{}' } },
          edgeHub: { type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.2', createOptions: '{}' } },
        },
        modules,
      },
    },
    $edgeHub: { 'properties.desired': { schemaVersion: '1.2', routes: opts.routes, storeAndForwardConfiguration: { timeToLiveSecs: 7200 }, ...opts.edgeHubExtra } },
  }
  for (const [m, d] of Object.entries(opts.desired ?? {})) content[m] = { 'properties.desired': d }
  return { modulesContent: content }
}
