/**
 * Live changes from other processes (PRODUCT.md: applied within 1 s): the `$edgeHub` document
 * (policy, routes, bridges), identities deleted or disabled, the hub record (upstream). Follows the
 * registry's change feed; on a policy change every live session is re-authorized (PROTOCOL.md §3).
 */
import type { Aedes } from 'aedes'
import type { Logger } from 'pino'

import type { UpstreamBridge } from '../bridge/bridge.js'
import type { HubContext } from '../config/home.js'
import type { Change, TwinKey, TwinRecord } from '../registry/types.js'
import { mergeMetadata, type TwinObject } from '../twin/index.js'
import { brokerPersistence, liveSubscriptions } from './aedes-internals.js'
import { compileEdgeHubDesired, emptyEdgeHubState, type DesiredStatus, type EdgeHubState } from './edgehub-state.js'
import type { IotHub } from './iothub.js'
import { PRIVATE_PREFIX } from './pipeline.js'
import type { Session, SessionTable } from './session.js'

/** The last `$edgeHub` desired document the broker applied, kept with the twin for a restart. */
export interface LastGoodEdgeHub {
  version: number
  desired: Record<string, unknown>
}

type EdgeHubTwin = TwinRecord & { lastGood?: LastGoodEdgeHub }

export interface LiveDeps {
  aedes: Aedes
  ctx: HubContext
  log: Logger
  sessions: SessionTable
  iothub: IotHub
  bridge: UpstreamBridge
  childrenOf(edgeId: string): Promise<Set<string>>
  isClosing(): boolean
}

export class LiveConfig {
  edgeHub: EdgeHubState = emptyEdgeHubState()
  lastDesiredStatus: DesiredStatus = { code: 200, description: '' }
  private lastSeq = 0
  private polling = false
  private bridgeReportTimer?: NodeJS.Timeout

  constructor(private readonly d: LiveDeps) {}

  private get edgeHubKey(): TwinKey {
    return { deviceId: this.d.ctx.hub.edgeDeviceId, moduleId: '$edgeHub' }
  }

  async start(): Promise<void> {
    this.lastSeq = await this.d.ctx.store.lastChangeSeq()
    await this.reloadEdgeHub('start')
  }

  async poll(): Promise<void> {
    if (this.polling || this.d.isClosing()) return
    this.polling = true
    try {
      const changes = await this.d.ctx.store.changesSince(this.lastSeq)
      if (changes.length === 0) return
      this.lastSeq = changes[changes.length - 1].seq
      await this.apply(changes)
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'reading the registry change feed failed')
    } finally {
      this.polling = false
    }
  }

  async apply(changes: Change[]): Promise<void> {
    const { edgeDeviceId } = this.d.ctx.hub
    let reloadEdgeHub = false
    const identities = new Set<string>()
    for (const c of changes) {
      if (c.kind === 'twin' && c.deviceId === edgeDeviceId && c.moduleId === '$edgeHub' && c.op !== 'reported') reloadEdgeHub = true
      else if (c.kind === 'twin' && c.op === 'desired' && c.deviceId) void this.d.iothub.desiredChanged({ deviceId: c.deviceId, moduleId: c.moduleId })
      else if ((c.kind === 'device' || c.kind === 'module') && c.deviceId) identities.add(c.deviceId)
      else if (c.kind === 'hub') identities.add('*')
    }
    if (identities.has('*')) await this.reloadHubRecord()
    if (reloadEdgeHub) await this.reloadEdgeHub('change')
    if (identities.size > 0) await this.recheckIdentities(identities)
  }

  /** Drops sessions whose device or module was deleted or disabled. */
  private async recheckIdentities(deviceIds: Set<string>): Promise<void> {
    const { store } = this.d.ctx
    for (const s of [...this.d.sessions.values()]) {
      if (s.dps) continue // a DPS registration connection is no device identity (yet)
      if (s.actsFor) s.actsFor = await this.d.childrenOf(s.identity.deviceId)
      if (!deviceIds.has('*') && !deviceIds.has(s.identity.deviceId)) continue
      const dev = await store.getDevice(s.identity.deviceId)
      const mod = s.identity.moduleId ? await store.getModule(s.identity.deviceId, s.identity.moduleId) : undefined
      let reason: string | undefined
      if (!dev) reason = `device "${s.identity.deviceId}" was deleted`
      else if (dev.status !== 'enabled') reason = `device "${s.identity.deviceId}" was disabled`
      else if (s.identity.moduleId && !mod) reason = `module "${s.identity.clientId}" was deleted`
      if (reason) {
        this.d.log.info({ client: s.client.id, reason }, 'closing session')
        s.client.close()
      }
    }
  }

  /**
   * Loads the `$edgeHub` desired document; on success re-authorizes every live session. An invalid
   * document keeps the last good one in force, also across a restart (it is kept with the twin).
   */
  async reloadEdgeHub(why: 'start' | 'change'): Promise<void> {
    const twin = (await this.d.ctx.store.getTwin(this.edgeHubKey)) as EdgeHubTwin | undefined
    const version = twin?.desiredVersion ?? 0
    if (why === 'change' && version === this.edgeHub.desiredVersion) return
    let result = compileEdgeHubDesired(twin?.desired ?? {}, version)
    const status = result.status
    if (!result.ok && why === 'start' && twin?.lastGood) {
      const fallback = compileEdgeHubDesired(twin.lastGood.desired, twin.lastGood.version)
      if (fallback.ok) {
        this.d.log.warn({ reason: status.description, using: twin.lastGood.version }, `the stored $edgeHub document is invalid: using the last good one (version ${twin.lastGood.version}) until a valid one is set`)
        result = fallback
      }
    }
    this.lastDesiredStatus = status
    if (!result.ok) {
      await this.report(status)
      this.d.log.warn({ reason: status.description }, 'rejected $edgeHub desired properties; the last good policy stays in force')
      return
    }
    this.edgeHub = result.state
    await this.report(status, status.code === 200 ? { version: result.state.desiredVersion, desired: twin?.desired ?? {} } : undefined)
    this.d.log.info(
      { version: result.state.desiredVersion, statements: result.state.config.mqttBroker.authorizations?.length ?? 0, routes: Object.keys(result.state.config.routes).length },
      why === 'start' ? 'loaded $edgeHub configuration' : 'applied new $edgeHub configuration',
    )
    // The banner says this too, but --daemon and `-o json` runs print no banner: the log must.
    if (!result.state.policy) {
      this.d.log.warn('no authorization policy is set, so no client may connect: allow every registered identity with `edgemq edgehub set --default-policy`, or set one with `edgemq edgehub set <policy.json>`')
    }
    this.d.iothub.configure(result.state.config)
    this.configureBridge()
    if (why === 'change') this.reauthorizeAll()
  }

  configureBridge(): void {
    const c = this.edgeHub.config
    this.d.bridge.configure(this.d.ctx.hub.upstream, c.mqttBroker.bridges, c.storeAndForwardConfiguration.timeToLiveSecs)
  }

  /** `hub set-upstream` (or another hub change) from another process. */
  private async reloadHubRecord(): Promise<void> {
    const { ctx } = this.d
    const hub = await ctx.store.getHub()
    if (!hub) return
    const before = JSON.stringify(ctx.hub.upstream)
    Object.assign(ctx.hub, hub)
    if (JSON.stringify(hub.upstream) !== before) {
      if (!hub.upstream) delete ctx.hub.upstream
      this.d.log.info({ upstream: hub.upstream ? `${hub.upstream.gatewayHostName}:${hub.upstream.port}` : null }, 'upstream changed')
      this.configureBridge()
    }
  }

  /** Bridge state into `$edgeHub` reported properties, at most once a second. */
  onBridgeStatus(): void {
    if (this.bridgeReportTimer || this.d.isClosing()) return
    this.bridgeReportTimer = setTimeout(() => {
      this.bridgeReportTimer = undefined
      if (this.d.isClosing()) return
      const status = this.d.bridge.status()
      void this.d.ctx.store
        .updateTwin(this.edgeHubKey, (t) => ({ ...t, reported: { ...t.reported, bridges: [status] }, reportedVersion: t.reportedVersion + 1, version: t.version + 1 }), 'reported')
        .catch(() => undefined)
    }, 1000)
    this.bridgeReportTimer.unref()
  }

  close(): void {
    clearTimeout(this.bridgeReportTimer)
  }

  private async report(status: DesiredStatus, lastGood?: LastGoodEdgeHub): Promise<void> {
    await this.d.ctx.store
      .updateTwin(
        this.edgeHubKey,
        (t) => ({
          ...t,
          ...(lastGood ? { lastGood } : {}),
          reported: { ...t.reported, lastDesiredStatus: status, lastDesiredVersion: this.edgeHub.desiredVersion },
          reportedMetadata: mergeMetadata(t.reportedMetadata as TwinObject | undefined, { lastDesiredStatus: {}, lastDesiredVersion: 0 }, { $lastUpdated: new Date().toISOString() }),
          reportedVersion: t.reportedVersion + 1,
          version: t.version + 1,
        }),
        'reported',
      )
      .catch((err: unknown) => this.d.log.warn({ err: (err as Error).message }, 'cannot write $edgeHub reported properties'))
  }

  /** PROTOCOL.md §3: on a policy change every live session is re-checked. */
  private reauthorizeAll(): void {
    const policy = this.edgeHub.policy
    for (const s of [...this.d.sessions.values()]) {
      if (s.dps) continue // DPS connections are outside the broker's policy
      const authz = policy?.forIdentity(s.identity)
      s.authz = authz
      if (!authz || !authz.canConnect()) {
        this.d.log.info({ client: s.client.id }, 'policy no longer allows this client to connect: disconnecting')
        s.client.close()
        continue
      }
      this.dropDeniedSubscriptions(s)
    }
  }

  private dropDeniedSubscriptions(s: Session): void {
    const denied = Object.keys(liveSubscriptions(s.client)).filter((f) => !f.startsWith(PRIVATE_PREFIX) && !s.authz?.canSubscribe(f))
    for (const f of s.granted) if (!s.authz?.canSubscribe(f)) s.granted.delete(f)
    if (denied.length === 0) return
    // aedes wants the filters as strings (its typings say Subscription objects, which it silently
    // ignores: the subscription stayed). No messageId: no UNSUBACK to a client that sent nothing.
    s.client.unsubscribe({ cmd: 'unsubscribe', unsubscriptions: denied }, (err) => {
      if (err) return this.d.log.warn({ client: s.client.id, filters: denied, err: err.message }, 'removing subscriptions the policy no longer allows failed')
      this.d.log.info({ client: s.client.id, filters: denied }, 'policy no longer allows these subscriptions: removed them')
    })
    // Without a messageId aedes leaves a persistent session's stored subscriptions alone; drop them
    // too, or they would keep queueing messages while the client is offline.
    if (!s.client.clean) {
      brokerPersistence(this.d.aedes)
        .removeSubscriptions(s.client, denied)
        .catch((err: Error) => this.d.log.warn({ client: s.client.id, err: err.message }, 'cannot remove stored subscriptions'))
    }
  }
}
