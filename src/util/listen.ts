/**
 * Listen on a port and turn the two port errors a user can fix into one-line EdgeMqErrors with a
 * hint (no stack trace): EADDRINUSE (something else listens there) and EACCES (a privileged port).
 */
import { once } from 'node:events'
import type { AddressInfo, Server } from 'node:net'

import { EdgeMqError } from '../errors.js'

export interface ListenOptions {
  host?: string
  /** What listens, as the message names it: `mqtt`, `mqtts`, `rest`, … */
  what: string
  /** The flag that picks this port, for the hint: `--port`, `--tls-port`, `--rest-port`, … */
  flag: string
  /** Extra advice for EACCES (after the CAP_NET_BIND_SERVICE sentence). */
  privilegedHint?: string
}

/** `server.listen(port, host)`; resolves with the bound port (useful for port 0). */
export async function listenWithHints(server: Server, port: number, opts: ListenOptions): Promise<number> {
  server.listen(port, opts.host)
  try {
    await once(server, 'listening')
  } catch (err) {
    throw portError(err, port, opts)
  }
  return (server.address() as AddressInfo).port
}

/** The EdgeMqError for a listen error with a user-fixable cause; any other error unchanged. */
function portError(err: unknown, port: number, opts: Pick<ListenOptions, 'what' | 'flag' | 'privilegedHint'>): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE') {
    return new EdgeMqError(`port ${port} (${opts.what}) is already in use`, { hint: `stop what uses it, or pick another ${opts.flag} (0 = a free one)` })
  }
  if (code === 'EACCES') {
    const extra = opts.privilegedHint ? `, ${opts.privilegedHint}` : '; pick a higher port'
    return new EdgeMqError(`no permission to listen on port ${port} (${opts.what})`, {
      hint: `ports below 1024 need root or CAP_NET_BIND_SERVICE (sudo setcap cap_net_bind_service=+ep "$(command -v node)")${extra}`,
    })
  }
  return err
}
