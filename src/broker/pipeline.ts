/**
 * The authorization pipeline: every PUBLISH (live, will, orphaned will after a crash, bridged in),
 * SUBSCRIBE and delivery is decided here, by small named steps run in order, the way aedes writes
 * its handlers. A step returns a `Verdict` to stop, or undefined to pass to the next one. Steps
 * only decide; the broker applies the verdict afterwards (answer an IoT Hub request, route
 * telemetry, rewrite a subscription, persist before the PUBACK), so nothing is mutated before the
 * whole decision is known, and every denial carries the step and the reason that logged it.
 */
import {
  iotHubSubscriptionKind,
  parseIotHubTopic,
  type MethodResponseTopic,
  type ParsedTopic,
  type TelemetryTopic,
  type TwinGetTopic,
  type TwinPatchReportedTopic,
} from '../iothub/index.js'
import { DPS_PREFIX, isDpsResponseFilter, parseDpsTopic, type DpsRequest } from '../dps/topics.js'
import type { Actor } from './session.js'

/** `$`-rooted private namespace that carries one client's IoT Hub responses (see iothub.ts). */
export const PRIVATE_PREFIX = '$edgemq/'

export type StepName = 'dps' | 'session' | 'size' | 'iothub' | 'policy'

/** A request the hub (or its DPS) answers itself: the message goes to no subscriber and is never retained. */
export type HubRequest = TwinGetTopic | TwinPatchReportedTopic | MethodResponseTopic | TelemetryTopic | DpsRequest

export type Verdict<R = never> =
  | { kind: 'allow'; step: StepName; reason?: string }
  | { kind: 'deny'; step: StepName; reason: string }
  | { kind: 'answered'; step: StepName; request: HubRequest }
  | { kind: 'rewritten'; step: StepName; value: R }

/** Where a publish came from: a connected client, a will (of a live or a vanished client), the bridge. */
export type PublishOrigin = 'client' | 'will' | 'bridge'

export interface PublishInput {
  /** Undefined when the publish cannot be attributed to an identity (never trusted). */
  actor: Actor | undefined
  origin: PublishOrigin
  topic: string
  qos: number
  payloadBytes: number
}

export interface PipelineLimits {
  maxMessageSize: number
}

/** A decided publish; `telemetry` is set for the sender's own telemetry, which the hub also routes. */
export type PublishVerdict = Verdict & { telemetry?: TelemetryTopic }

interface PublishState extends PublishInput {
  parsed: ParsedTopic
}

type PublishStep = (p: PublishState, limits: PipelineLimits) => PublishVerdict | undefined

const deny = (step: StepName, reason: string): { kind: 'deny'; step: StepName; reason: string } => ({ kind: 'deny', step, reason })

// ---- publish ----

/**
 * DPS: a registration connection only sends its register and operation-status requests (the
 * broker's DPS endpoint answers them); nobody else publishes on `$dps/`.
 */
const publishDps: PublishStep = (p, limits) => {
  if (!p.actor?.dps) return p.topic.startsWith(DPS_PREFIX) ? deny('dps', `only a DPS registration connection publishes on ${DPS_PREFIX}… topics`) : undefined
  if (p.origin !== 'client') return deny('dps', `a ${p.origin} cannot carry a DPS request`)
  const tooLarge = publishSize(p, limits)
  if (tooLarge) return tooLarge
  const parsed = parseDpsTopic(p.topic)
  if (parsed.kind === 'invalid') return deny('dps', `a DPS registration connection may only send DPS requests: ${parsed.reason}`)
  if (p.qos === 2) return deny('dps', 'QoS 2 is not supported on DPS topics')
  return { kind: 'answered', step: 'dps', request: parsed }
}

const publishSession: PublishStep = (p) => {
  if (!p.actor) return deny('session', `a ${p.origin} publish that no connected or registered identity owns is never trusted`)
  if (!p.actor.authz) return deny('session', 'no authorization policy is set')
  return undefined
}

function publishSize(p: PublishState, limits: PipelineLimits): PublishVerdict | undefined {
  return p.payloadBytes > limits.maxMessageSize ? deny('size', `message of ${p.payloadBytes} bytes is larger than the hub's maximum of ${limits.maxMessageSize}`) : undefined
}

/** IoT Hub topics: requests the hub answers, topics only the hub may publish, malformed ones. */
const publishIotHub: PublishStep = (p) => {
  if (p.topic.startsWith(PRIVATE_PREFIX)) return deny('iothub', `${PRIVATE_PREFIX}… is the hub's private namespace`)
  const parsed = p.parsed
  if (parsed.kind === 'user') return undefined
  if (p.qos === 2) return deny('iothub', 'QoS 2 is not supported on IoT Hub topics')
  const id = (p.actor as Actor).identity
  switch (parsed.kind) {
    case 'telemetry': {
      const own = parsed.deviceId === id.deviceId && parsed.moduleId === id.moduleId
      if (own) return undefined // the policy step allows it (built-in) and the broker routes it
      const actsFor = (p.actor as Actor).actsFor
      // Nested edge: an edge device forwards its children's and its own modules' telemetry as theirs.
      if (actsFor && (actsFor.has(parsed.deviceId) || (parsed.deviceId === id.deviceId && parsed.moduleId !== undefined))) {
        return { kind: 'answered', step: 'iothub', request: parsed }
      }
      return undefined // another identity's telemetry: only an explicit policy rule allows it
    }
    case 'twin-get':
    case 'twin-patch-reported':
    case 'method-response':
      if (p.origin !== 'client') return deny('iothub', `a ${p.origin} cannot carry an IoT Hub request (${parsed.kind})`)
      return { kind: 'answered', step: 'iothub', request: parsed }
    case 'invalid':
      return p.topic.startsWith('$iothub/') ? deny('iothub', `invalid IoT Hub topic: ${parsed.reason}`) : undefined
    default:
      // c2d, module inputs, twin responses, desired patches, method requests: only the hub sends these.
      return deny('iothub', `only the hub publishes ${parsed.kind} messages`)
  }
}

const publishPolicy: PublishStep = (p) => {
  // A user topic coming `in` over the bridge was asked for by a bridge rule of the same `$edgeHub`
  // document that holds the policy; IoT Hub and `$` topics still need an explicit statement.
  if (p.origin === 'bridge' && p.parsed.kind === 'user' && p.topic.charCodeAt(0) !== 36 /* $ */) {
    return { kind: 'allow', step: 'policy', reason: 'a user topic brought in by a bridge rule of the $edgeHub document' }
  }
  const d = (p.actor as Actor).authz!.decidePublish(p.topic)
  if (d.decision !== 'allow') return deny('policy', d.reason)
  const own = p.parsed.kind === 'telemetry' ? p.parsed : undefined
  return own ? { kind: 'allow', step: 'policy', reason: d.reason, telemetry: own } : { kind: 'allow', step: 'policy', reason: d.reason }
}

export const PUBLISH_STEPS: readonly PublishStep[] = [publishDps, publishSession, publishSize, publishIotHub, publishPolicy]

export function decidePublish(input: PublishInput, limits: PipelineLimits): PublishVerdict {
  // Built field by field: an object spread here cost ~1 µs per PUBLISH (issue 16's profile).
  const state: PublishState = { actor: input.actor, origin: input.origin, topic: input.topic, qos: input.qos, payloadBytes: input.payloadBytes, parsed: parseIotHubTopic(input.topic) }
  for (const step of PUBLISH_STEPS) {
    const v = step(state, limits)
    if (v) return v
  }
  return deny('policy', 'no step allowed it') // unreachable: publishPolicy always decides
}

// ---- subscribe ----

export interface SubscribeInput {
  actor: Actor | undefined
  filter: string
  qos: number
}

/** The subscription to register instead of the one asked for (private namespace, QoS capped). */
export interface Rewrite {
  topic: string
  qos: 0 | 1
}

export type SubscribeVerdict = Verdict<Rewrite>

/** Subscriptions served from the client's private namespace (one client never sees another's responses). */
const PRIVATE_KINDS = new Set<ReturnType<typeof iotHubSubscriptionKind>>(['twin-response', 'twin-desired', 'method-request'])

/** Client ids may hold `/ + #` (modules, IoT Hub's id alphabet): escape them into one topic level. */
export function encodeClientLevel(clientId: string): string {
  return clientId.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/\+/g, '%2B').replace(/#/g, '%23')
}

export function privateTopic(clientId: string, topic: string): string {
  return `${PRIVATE_PREFIX}${encodeClientLevel(clientId)}/${topic}`
}

/** True for a filter the hub serves from the private namespace (UNSUBSCRIBE must map it too). */
export function isPrivateKind(filter: string): boolean {
  return PRIVATE_KINDS.has(iotHubSubscriptionKind(filter)) || isDpsResponseFilter(filter)
}

export function decideSubscribe(input: SubscribeInput): SubscribeVerdict {
  const { actor, filter } = input
  if (!actor) return deny('session', 'no session')
  // DPS responses come from the client's private namespace, like twin responses; nothing else is open to it.
  if (actor.dps) {
    if (!isDpsResponseFilter(filter)) return deny('dps', `a DPS registration connection may only subscribe to $dps/registrations/res/#`)
    return { kind: 'rewritten', step: 'dps', value: { topic: privateTopic(actor.identity.clientId, filter), qos: Math.min(input.qos, 1) as 0 | 1 } }
  }
  if (filter.startsWith(DPS_PREFIX)) return deny('dps', 'only a DPS registration connection subscribes to $dps/ topics')
  if (!actor.authz) return deny('session', 'no authorization policy is set')
  if (filter.startsWith(PRIVATE_PREFIX)) return deny('iothub', `${PRIVATE_PREFIX}… is the hub's private namespace`)
  const d = actor.authz.decideSubscribe(filter)
  if (d.decision !== 'allow') return deny('policy', d.reason)
  const kind = iotHubSubscriptionKind(filter)
  const qos = Math.min(input.qos, 1) as 0 | 1
  if (PRIVATE_KINDS.has(kind)) return { kind: 'rewritten', step: 'iothub', value: { topic: privateTopic(actor.identity.clientId, filter), qos } }
  // PROTOCOL.md §4: IoT Hub serves C2D and module inputs at QoS 1 at most.
  if ((kind === 'c2d' || kind === 'module-input') && input.qos > 1) return { kind: 'rewritten', step: 'iothub', value: { topic: filter, qos } }
  return { kind: 'allow', step: 'policy', reason: d.reason }
}

// ---- delivery ----

export type ForwardVerdict = Verdict<string>

/** One shared verdict for the common case: no allocation per delivery (fan-out). */
const FORWARD_ALLOWED: ForwardVerdict = Object.freeze({ kind: 'allow', step: 'policy' })

/**
 * A message about to be written to a client (live, or replayed from a persistent session's queue
 * after a reconnect or a crash): re-checked against the policy in force now.
 */
export function decideForward(actor: Actor | undefined, clientId: string, topic: string): ForwardVerdict {
  if (topic.startsWith(PRIVATE_PREFIX)) {
    const prefix = `${PRIVATE_PREFIX}${encodeClientLevel(clientId)}/`
    if (!topic.startsWith(prefix)) return deny('iothub', `another client's private response`)
    return { kind: 'rewritten', step: 'iothub', value: topic.slice(prefix.length) }
  }
  // IoT Hub responses reach a client only through its private namespace; no other `$` topic is delivered.
  if (topic.charCodeAt(0) === 36 /* $ */) return deny('iothub', `${topic} is a $ topic`)
  if (!actor || !actor.authz) return deny('session', 'no session')
  const d = actor.authz.decideSubscribe(topic)
  return d.decision === 'allow' ? FORWARD_ALLOWED : deny('policy', d.reason)
}
