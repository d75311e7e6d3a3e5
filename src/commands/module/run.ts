import { spawn } from 'node:child_process'

import { BaseCommand } from '../../cli/base.js'
import { UsageError } from '../../errors.js'
import { childEnvironment, moduleEnvironment } from '../../workload/index.js'
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

    const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env: childEnvironment(process.env, m) })
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig)
    const onInt = forward('SIGINT')
    const onTerm = forward('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new UsageError(`command "${command[0]}" not found`, 'check the command after -- (and your PATH)') : err),
      )
      child.once('exit', (c, signal) => resolve(c ?? 128 + (signal ? signalNumber(signal) : 1)))
    }).finally(() => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
    })
    if (code !== 0) this.exit(code)
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  const n: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }
  return n[signal] ?? 1
}
