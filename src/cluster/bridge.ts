/**
 * One bridge to `$upstream` per hub, not per node. Every node builds its UpstreamBridge as
 * usual, but only the elected leader (see node.ts) hands it the upstream settings, so only the
 * leader connects to the parent. `out` rules need nothing more: the leader's bridge follows the
 * cluster bus, which carries every node's publishes. Telemetry that a non-leader routes INTO
 * `$upstream` goes to a Redis list the leader drains into its durable queue.
 */
import type { MQEmitter } from 'mqemitter'
import type { Logger } from 'pino'

import { UpstreamBridge, type BridgeStatus, type LocalPublisher } from '../bridge/bridge.js'
import type { ForwardQueue } from '../bridge/queue.js'
import type { BridgeConfig } from '../edgehub/config.js'
import type { UpstreamSettings } from '../registry/types.js'

export interface UpstreamHandoff {
  /** Non-leader: hand a telemetry message to whoever leads (durably, in Redis). */
  handOff(topic: string, payload: Buffer): void
}

export class ClusterBridge extends UpstreamBridge {
  private leading = false
  private wanted: { upstream: UpstreamSettings | undefined; bridges: readonly BridgeConfig[]; ttlSecs: number } = { upstream: undefined, bridges: [], ttlSecs: 7200 }
  private readonly gate: { leading: boolean }

  constructor(aedes: LocalPublisher, mq: MQEmitter, log: Logger, queue: ForwardQueue, onStatus: (s: BridgeStatus) => void, private readonly handoff: UpstreamHandoff) {
    // Only the leader's bridge reports into $edgeHub: a standby's "disabled" must not overwrite it.
    const gate = { leading: false }
    super(aedes, mq, log, queue, (s) => {
      if (gate.leading) onStatus(s)
    })
    this.gate = gate
  }

  get leader(): boolean {
    return this.leading
  }

  /** True when the hub has a parent (on every node), so routes to `$upstream` go to the bridge. */
  override get enabled(): boolean {
    return this.wanted.upstream !== undefined
  }

  override configure(upstream: UpstreamSettings | undefined, bridges: readonly BridgeConfig[], ttlSecs: number): void {
    this.wanted = { upstream, bridges, ttlSecs }
    super.configure(this.leading ? upstream : undefined, bridges, ttlSecs)
  }

  override enqueueTelemetry(topic: string, payload: Buffer): void {
    if (this.leading) super.enqueueTelemetry(topic, payload)
    else this.handoff.handOff(topic, payload)
  }

  /** Called by the election: the leader connects, a node that lost the lock lets go. */
  setLeader(leading: boolean): void {
    if (leading === this.leading) return
    this.leading = leading
    this.gate.leading = leading
    super.configure(leading ? this.wanted.upstream : undefined, this.wanted.bridges, this.wanted.ttlSecs)
  }
}
