import { BaseCommand } from '../../cli/base.js'
import { UsageError } from '../../errors.js'
import { childEnvironment, moduleEnvironment } from '../../workload/index.js'
import { runModuleProcess } from '../../workload/run.js'
import { moduleEnvFlags } from './env.js'

export default class ModuleRun extends BaseCommand<typeof ModuleRun> {
  static summary = 'Run an IoT Edge module\'s code with the environment IoT Edge would give it.'
  static description =
    'Runs <command…> (after --) with `module env`\'s variables (the other mode\'s variables removed), stdin/stdout/stderr inherited, and exits with its exit code (128+n when a signal ended it). Ctrl-C and SIGTERM are passed on to it.'
  static examples = [
    '<%= config.bin %> module run --module filter -- node filter.js',
    '<%= config.bin %> module run -m filter --mode workload -- python3 main.py',
    '<%= config.bin %> module run -d edge-gateway -m filter -- dotnet run',
  ]
  static strict = false
  static flags = moduleEnvFlags

  async run(): Promise<void> {
    const f = this.flags
    const sep = this.argv.indexOf('--')
    const command = sep >= 0 ? this.argv.slice(sep + 1) : []
    if (command.length === 0) throw new UsageError('missing the command to run', 'put it after --, e.g. `edgemq module run -m filter -- node filter.js`')
    await this.checkHubName(f['hub-name'])
    const m = await moduleEnvironment(await this.hub(), { deviceId: f.device, moduleId: f.module, mode: f.mode })
    for (const n of m.notes) this.logToStderr(`warning: ${n}`)

    const code = await runModuleProcess(command, childEnvironment(process.env, m))
    if (code !== 0) this.exit(code)
  }
}
