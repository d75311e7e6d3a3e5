import { homePaths } from '../config/home.js'
import { BrokerUnreachableError } from '../errors.js'
import { readRuntime, removeRuntime } from '../broker/runtime.js'
import { pidAlive } from '../util/fs.js'

/** SIGTERM, then wait for the pid to go (checked on a short interval), SIGKILL after `timeoutMs`. */
export async function stopBroker(home: string, timeoutMs = 15_000): Promise<{ status: 'stopped'; pid: number; forced: boolean }> {
  const file = homePaths(home).brokerState
  const rt = readRuntime(file)
  if (!rt) throw new BrokerUnreachableError(`broker not reachable: no broker is running for ${home}`, 'nothing to stop')
  process.kill(rt.pid, 'SIGTERM')
  const deadline = Date.now() + timeoutMs
  // A process that is not our child cannot be awaited by event; poll its pid briefly.
  while (pidAlive(rt.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  let forced = false
  if (pidAlive(rt.pid)) {
    process.kill(rt.pid, 'SIGKILL')
    forced = true
    removeRuntime(file, rt.pid)
  }
  return { status: 'stopped', pid: rt.pid, forced }
}
