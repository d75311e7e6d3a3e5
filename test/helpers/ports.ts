/** Ports for tests and benchmarks (no node:test import: bench can use it). */
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'

/**
 * A range outside the kernel's ephemeral one. Ports handed out for `listen(0)` and for outgoing
 * connections all come from the ephemeral range, so a port picked outside it cannot be taken by
 * another test's broker on port 0 or by a client socket in the gap between picking and binding.
 */
function quietRange(): { low: number; high: number } | undefined {
  let low = 32_768
  let high = 60_999
  try {
    const [l, h] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (Number.isInteger(l) && Number.isInteger(h)) [low, high] = [l, h]
  } catch {
    // not Linux: assume its default range
  }
  if (low > 12_000) return { low: 10_000, high: low - 1 }
  if (high < 63_000) return { low: high + 1, high: 65_535 }
  return undefined
}

const RANGE = quietRange()

async function bindable(port: number): Promise<boolean> {
  const srv = createServer()
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('listening', () => resolve(true))
    srv.once('error', () => resolve(false))
    srv.listen(port)
  })
  if (ok) await new Promise<void>((r) => srv.close(() => r()))
  return ok
}

/**
 * A port nothing listens on right now, for a server that must come back on the same port
 * (a restarted parent broker). Picked at random outside the ephemeral range and checked by
 * binding it on all interfaces.
 */
export async function freePort(): Promise<number> {
  if (RANGE) {
    for (let i = 0; i < 200; i++) {
      const port = RANGE.low + Math.floor(Math.random() * (RANGE.high - RANGE.low + 1))
      if (await bindable(port)) return port
    }
  }
  // No range outside the ephemeral one (or all taken): one the kernel picks, as before.
  const srv = createServer()
  srv.listen(0)
  await once(srv, 'listening')
  const port = (srv.address() as AddressInfo).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}
