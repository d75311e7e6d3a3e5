import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { hubTargetFlags } from '../../cli/flags.js'
import { formatEnvironment, moduleEnvironment, type EnvShell } from '../../workload/index.js'

export const moduleEnvFlags = {
  device: Flags.string({ char: 'd', aliases: ['device-id'], summary: 'The edge device (default: the hub\'s edge device).' }),
  module: Flags.string({ char: 'm', aliases: ['module-id'], summary: 'The module.', required: true }),
  mode: Flags.option({
    options: ['connection-string', 'workload'] as const,
    default: 'connection-string',
    summary: 'connection-string: EdgeHubConnectionString + EdgeModuleCACertificateFile; workload: the IOTEDGE_* variables and the broker\'s workload API.',
  })(),
  ...hubTargetFlags,
}

export default class ModuleEnv extends BaseCommand<typeof ModuleEnv> {
  static summary = 'Print the environment an IoT Edge module process needs (what ModuleClient.fromEnvironment() reads).'
  static description =
    'connection-string mode (default): EdgeHubConnectionString (GatewayHostName=localhost) and EdgeModuleCACertificateFile (the hub CA). workload mode: IOTEDGE_WORKLOADURI, IOTEDGE_DEVICEID, IOTEDGE_MODULEID, IOTEDGE_MODULEGENERATIONID, IOTEDGE_IOTHUBHOSTNAME, IOTEDGE_GATEWAYHOSTNAME, IOTEDGE_AUTHSCHEME=sasToken, served by the running broker\'s workload API (needs `broker start`). Also the env values a deployment manifest gave the module. Prints shell lines (--shell, default bash) for eval; -o json prints an object. The SDKs always dial port 8883: run the broker there.'
  static examples = [
    'eval "$(<%= config.bin %> module env --module filter)"',
    '<%= config.bin %> module env -m filter --mode workload --shell fish | source',
    '<%= config.bin %> module env -m filter --shell dotenv > .env',
    '<%= config.bin %> module env -m filter --shell pwsh | Invoke-Expression',
  ]
  static flags = {
    ...moduleEnvFlags,
    shell: Flags.option({ options: ['bash', 'fish', 'pwsh', 'dotenv'] as const, summary: 'Print lines for this shell (default bash; zsh and sh read bash\'s).' })(),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const m = await moduleEnvironment(await this.hub(), { deviceId: f.device, moduleId: f.module, mode: f.mode })
    for (const n of m.notes) this.logToStderr(`warning: ${n}`)
    // -o given explicitly (json/table/tsv) and no --shell: the data view; otherwise shell lines.
    const outputAsked = this.argv.some((a) => a === '-o' || a === '--output' || a.startsWith('--output=') || /^-o\w/.test(a))
    if (f.shell === undefined && outputAsked) this.print(m.env)
    else this.log(formatEnvironment(m.env, (f.shell ?? 'bash') as EnvShell))
  }
}
