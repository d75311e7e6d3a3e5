/**
 * The environment IoT Edge gives a module container, so module code runs unchanged on a laptop
 * (`ModuleClient.fromEnvironment()` in every official SDK reads it):
 * - connection-string mode: `EdgeHubConnectionString` (with `GatewayHostName`) and
 *   `EdgeModuleCACertificateFile` — what iotedgehubdev used;
 * - workload mode: the `IOTEDGE_*` variables iotedged sets, with the workload API (server.ts)
 *   served by the running broker for signing and the trust bundle.
 * Plus the `env` a deployment manifest gave the module.
 */
import type { HubContext } from '../config/home.js'
import { readRuntime } from '../broker/runtime.js'
import { deployedModuleEnv } from '../deployment/apply.js'
import { BrokerUnreachableError, UsageError } from '../errors.js'
import { ensureHubPki } from '../pki/index.js'
import { WORKLOAD_API_VERSION } from './server.js'

export type EnvMode = 'connection-string' | 'workload'
export type EnvShell = 'bash' | 'fish' | 'pwsh' | 'dotenv'

/** The host modules dial: the broker's TLS certificate names it, and the SDKs always use port 8883. */
export const GATEWAY_HOST = 'localhost'

/** Variables of the other mode, removed from a child's inherited environment (the SDK prefers a connection string). */
export const CONNECTION_STRING_VARS = ['EdgeHubConnectionString', 'IotHubConnectionString', 'EdgeModuleCACertificateFile']
export const WORKLOAD_VARS = ['IOTEDGE_WORKLOADURI', 'IOTEDGE_DEVICEID', 'IOTEDGE_MODULEID', 'IOTEDGE_MODULEGENERATIONID', 'IOTEDGE_IOTHUBHOSTNAME', 'IOTEDGE_GATEWAYHOSTNAME', 'IOTEDGE_AUTHSCHEME', 'IOTEDGE_APIVERSION']

export interface ModuleEnvironment {
  mode: EnvMode
  deviceId: string
  moduleId: string
  env: Record<string, string>
  /** Advice for stderr (e.g. the broker does not listen on 8883). */
  notes: string[]
}

export async function moduleEnvironment(ctx: HubContext, opts: { deviceId?: string; moduleId: string; mode: EnvMode }): Promise<ModuleEnvironment> {
  const deviceId = opts.deviceId ?? ctx.hub.edgeDeviceId
  const { moduleId, mode } = opts
  if (moduleId.startsWith('$')) throw new UsageError(`"${moduleId}" is an IoT Edge runtime module: edgemq plays it`, 'pick one of your own modules (`edgemq module list`)')
  const mod = await ctx.registry.getModule(deviceId, moduleId)
  const notes: string[] = []
  const rt = readRuntime(ctx.paths.brokerState)
  if (rt && rt.ports.mqtts !== 8883) {
    notes.push(`the running broker serves MQTT over TLS on ${rt.ports.mqtts ?? 'no port'}, but the IoT SDKs always dial 8883; restart it with --tls-port 8883`)
  }
  const env: Record<string, string> = { ...(await deployedModuleEnv(ctx, deviceId, moduleId)) }
  if (mode === 'connection-string') {
    const pki = await ensureHubPki(ctx.paths.pki, { hubName: ctx.hub.name })
    env.EdgeHubConnectionString = await ctx.registry.connectionString(deviceId, moduleId, { gateway: GATEWAY_HOST })
    env.EdgeModuleCACertificateFile = pki.caCertPath
  } else {
    if (deviceId !== ctx.hub.edgeDeviceId) {
      throw new UsageError(`the workload API serves the modules of the edge device "${ctx.hub.edgeDeviceId}", not "${deviceId}"`, 'use --mode connection-string for modules of other devices')
    }
    const port = rt?.ports.workload
    if (!rt || port === undefined) {
      throw new BrokerUnreachableError(`broker not reachable: workload mode needs the running broker (it serves the workload API) for ${ctx.home}`)
    }
    Object.assign(env, {
      IOTEDGE_WORKLOADURI: `http://127.0.0.1:${port}/`,
      IOTEDGE_DEVICEID: deviceId,
      IOTEDGE_MODULEID: moduleId,
      IOTEDGE_MODULEGENERATIONID: mod.generationId,
      IOTEDGE_IOTHUBHOSTNAME: ctx.hub.hostName,
      IOTEDGE_GATEWAYHOSTNAME: GATEWAY_HOST,
      IOTEDGE_AUTHSCHEME: 'sasToken',
      IOTEDGE_APIVERSION: WORKLOAD_API_VERSION,
    })
  }
  return { mode, deviceId, moduleId, env, notes }
}

/** The environment a child process gets: ours, minus the other mode's variables, plus the module's. */
export function childEnvironment(base: NodeJS.ProcessEnv, m: ModuleEnvironment): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...base }
  for (const k of [...CONNECTION_STRING_VARS, ...WORKLOAD_VARS]) delete out[k]
  return { ...out, ...m.env }
}

const quote = {
  bash: (v: string) => `'${v.replace(/'/g, `'\\''`)}'`,
  fish: (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
  pwsh: (v: string) => `'${v.replace(/'/g, "''")}'`,
  dotenv: (v: string) => (/['\n\r]/.test(v) ? `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"` : `'${v}'`),
}

/** Lines to `eval` (bash/zsh), `source` (fish), `Invoke-Expression` (pwsh), or a `.env` file. */
export function formatEnvironment(env: Record<string, string>, shell: EnvShell): string {
  return Object.entries(env)
    .map(([k, v]) => {
      switch (shell) {
        case 'bash':
          return `export ${k}=${quote.bash(v)}`
        case 'fish':
          return `set -gx ${k} ${quote.fish(v)}`
        case 'pwsh':
          return `$env:${k} = ${quote.pwsh(v)}`
        case 'dotenv':
          return `${k}=${quote.dotenv(v)}`
      }
    })
    .join('\n')
}
