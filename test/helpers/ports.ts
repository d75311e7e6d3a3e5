/** Ports for tests and benchmarks (no node:test import: bench can use it). */
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/**
 * The low end of the kernel's ephemeral range. Ports handed out for `listen(0)` and for outgoing
 * connections all come from that range, so a port picked below it cannot be taken by another
 * test's broker on port 0 or by a client socket in the gap between picking it and binding it.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(low) && low > 12_000) return low
  } catch { /* not Linux: fall back to the IANA range's start */ }
  return 49_152
}

const LOW = 10_000
const HIGH = ephemeralLow() - 1

async function bindable(port: number): Promise<boolean> {
  const srv = createServer()
  srv.once('error', () => {})
  srv.listen(port)
  const ok = await Promise.race([once(srv, 'listening').then(() => true), once(srv, 'error').then(() => false)])
  if (ok) await new Promise<void>((r) => srv.close(() => r()))
  return ok
}

/**
 * A port nothing listens on right now, for a server that must come back on the same port
 * (a restarted parent broker). Picked at random below the ephemeral range and checked by
 * binding it on all interfaces.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW))
    if (await bindable(port)) return port
  }
  throw new Error(`no free port found in ${LOW}–${HIGH}`)
}
