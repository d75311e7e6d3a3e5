/**
 * Issue 4: `broker start|status|stop` as a user sees them — a taken port or a home that already
 * has a broker is refused with a one-line message (no stack trace), `broker status` exits 3 when
 * nothing runs and 0 with the ports when it does, `broker stop` stops a `--daemon` broker.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { after, describe, it } from 'node:test'

import { startBroker, type BrokerProc } from '../helpers/broker.js'
import { jsonOf, runCli, tempHome, type CliResult } from '../helpers/cli.js'

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * The error output is the message (plus at most a hint line), never a stack trace. The broker's
 * own JSON log lines (stderr is also its log stream when not a TTY) are not part of the error.
 */
function assertCleanError(r: CliResult, re: RegExp): void {
  assert.notEqual(r.code, 0, r.stdout)
  assert.match(r.stderr, re)
  assert.doesNotMatch(r.stderr, /^\s+at /m, `stack trace printed:\n${r.stderr}`)
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('{'))
  assert.ok(lines.length <= 2, `expected a one-line error (+ hint), got:\n${r.stderr}`)
  assert.match(lines[0], re)
}

describe('broker start / status / stop', () => {
  const running: BrokerProc[] = []
  const daemons: number[] = []

  after(async () => {
    for (const b of running) await b.stop()
    // A daemon left by a failed test is ours (we read its pid from `broker start --daemon`).
    for (const pid of daemons) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })

  it('a port already in use → exit ≠ 0, one line "already in use", no stack trace', async () => {
    const home = tempHome()
    const blocker: Server = createServer()
    blocker.listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    const port = (blocker.address() as AddressInfo).port
    try {
      const plain = await runCli(['broker', 'start', '--port', String(port), '--tls-port', '0'], { home })
      assertCleanError(plain, new RegExp(`port ${port} \\(mqtt\\) is already in use`))
      const tls = await runCli(['broker', 'start', '--port', '0', '--tls-port', String(port)], { home })
      assertCleanError(tls, new RegExp(`port ${port} \\(mqtts\\) is already in use`))
      // The failed start left no runtime record behind: status still says "not running".
      assert.equal((await runCli(['broker', 'status'], { home })).code, 3)
    } finally {
      blocker.close()
    }
  })

  it('a second `broker start` on the same home is refused with a clear message', async () => {
    const home = tempHome()
    const b = await startBroker(home)
    running.push(b)
    const r = await runCli(['broker', 'start', '--port', '0', '--tls-port', '0'], { home })
    assertCleanError(r, new RegExp(`a broker \\(pid ${b.pid}\\) already runs`))
    assert.equal(b.proc.exitCode, null, 'the first broker is untouched')
  })

  it('`broker status` exits 3 when not running, 0 with the ports when running', async () => {
    const home = tempHome()
    const before = await runCli(['broker', 'status'], { home })
    assert.equal(before.code, 3, before.stderr)
    assert.match(before.stderr, /not reachable|not running/i)
    const b = await startBroker(home)
    running.push(b)
    const r = await runCli(['broker', 'status', '-o', 'json'], { home })
    assert.equal(r.code, 0, r.stderr)
    const s = jsonOf<{ running: boolean; pid: number; ports: { mqtt: number; mqtts: number; control: number } }>(r)
    assert.equal(s.running, true)
    assert.equal(s.pid, b.pid)
    assert.deepEqual(s.ports, b.ports)
    await b.stop()
    assert.equal((await runCli(['broker', 'status'], { home })).code, 3)
  })

  it('`broker stop` stops a `--daemon` broker; status then exits 3', async () => {
    const home = tempHome()
    // --home and -o given explicitly: the daemon child gets its own, and must not see them twice.
    const start = await runCli(['broker', 'start', '--home', home, '--daemon', '--port', '0', '--tls-port', '0', '-o', 'json'], { home })
    assert.equal(start.code, 0, start.stderr)
    const rt = jsonOf<{ status: string; pid: number; ports: { mqtt: number; mqtts: number } }>(start)
    daemons.push(rt.pid)
    assert.equal(rt.status, 'started')
    assert.ok(rt.ports.mqtt > 0 && rt.ports.mqtts > 0, start.stdout)
    assert.ok(isAlive(rt.pid))
    assert.equal((await runCli(['broker', 'status'], { home })).code, 0)
    const stop = await runCli(['broker', 'stop', '-o', 'json'], { home })
    assert.equal(stop.code, 0, stop.stderr)
    assert.deepEqual(jsonOf(stop), { status: 'stopped', pid: rt.pid, forced: false })
    assert.equal(isAlive(rt.pid), false)
    assert.equal((await runCli(['broker', 'status'], { home })).code, 3)
    const again = await runCli(['broker', 'stop'], { home })
    assert.equal(again.code, 3, 'stopping nothing says the broker is not reachable')
  })
})
