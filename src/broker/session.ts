/**
 * Who is connected, as whom: one `Session` per live MQTT client, keyed by client id. A session
 * outlives aedes' `clientError` (so a will published after an error disconnect is still
 * attributed to its owner) and ends at `clientDisconnect`, after aedes has handled the will.
 */
import type { Client } from 'aedes'

import type { IdentityPolicy } from '../policy/index.js'
import type { AuthMethod, DpsCredentials } from './authenticate.js'
import type { ClientIdentity } from './identity.js'

/** Whoever a publish or subscribe is decided for: a live session, or the owner of an orphaned will. */
export interface Actor {
  identity: ClientIdentity
  /** The policy as it applies to this identity now; undefined = no policy (nobody may do anything). */
  authz: IdentityPolicy | undefined
  /** For an edge device: the child devices it may send telemetry for (nested edge, PROTOCOL.md §6). */
  actsFor?: Set<string>
  /** The identity's generation id at authentication (IoT Hub's `iothub-connection-auth-generation-id`). */
  generationId?: string
  /** The model id the device announced at CONNECT (IoT Plug and Play; IoT Hub's `dt-dataschema` on its telemetry). */
  modelId?: string
  /**
   * Set for a DPS registration connection (src/dps/): what it presented at CONNECT, attested when it
   * sends its register request. Such a session only talks DPS; the policy never applies to it.
   */
  dps?: DpsCredentials
}


export interface Session extends Actor {
  client: Client
  method: AuthMethod
  address: string
  connectedAt: number
  expiresAt?: number
  expiryTimer?: NodeJS.Timeout
  /** Set once aedes registered the client (it then ends at clientDisconnect, after its will). */
  registered: boolean
  /** SUBSCRIBE filters this session was granted, as the client sent them (before any rewrite). */
  granted: Set<string>
}

export class SessionTable {
  private readonly byId = new Map<string, Session>()

  /** The session of this very client object (not of an older or newer connection with its id). */
  of(client: Client): Session | undefined {
    const s = this.byId.get(client.id)
    return s && s.client === client ? s : undefined
  }

  byClientId(clientId: string): Session | undefined {
    return this.byId.get(clientId)
  }

  has(clientId: string): boolean {
    return this.byId.has(clientId)
  }

  /** Registers a new connection; a previous one with the same id (a takeover) loses its timer. */
  add(s: Session): void {
    const prev = this.byId.get(s.client.id)
    if (prev) clearTimeout(prev.expiryTimer)
    this.byId.set(s.client.id, s)
  }

  /** Ends the session of this client object; false when it was not (or no longer) the live one. */
  end(client: Client): boolean {
    const s = this.of(client)
    if (!s) return false
    clearTimeout(s.expiryTimer)
    this.byId.delete(client.id)
    return true
  }

  clientIds(): string[] {
    return [...this.byId.keys()]
  }

  values(): IterableIterator<Session> {
    return this.byId.values()
  }

  get size(): number {
    return this.byId.size
  }

  clearTimers(): void {
    for (const s of this.byId.values()) clearTimeout(s.expiryTimer)
  }
}
