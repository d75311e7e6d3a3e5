/**
 * `module run`: a module's process with the environment IoT Edge would give it, stdio inherited,
 * SIGINT/SIGTERM passed on. Resolves with its exit code (128+n when signal n ended it).
 */
import { spawn } from 'node:child_process'

import { UsageError } from '../errors.js'

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }

export async function runModuleProcess(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env })
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig)
  const onInt = forward('SIGINT')
  const onTerm = forward('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  return new Promise<number>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new UsageError(`command "${command[0]}" not found`, 'check the command after -- (and your PATH)') : err),
    )
    child.once('exit', (c, signal) => resolve(c ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 1) : 1)))
  }).finally(() => {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  })
}
