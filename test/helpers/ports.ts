/** Ports for tests and benchmarks (no node:test import: bench can use it). */
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'

/** A port nothing listens on right now (bound on 127.0.0.1, read, closed). */
export async function freePort(): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as AddressInfo).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}
