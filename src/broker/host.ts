/**
 * The narrow interfaces the broker lends to its parts, so they depend on what they use and not
 * on the broker class (no import cycles): the IoT Hub primitives (iothub.ts), the service side
 * (control.ts, registry-rest.ts) and a cluster node (cluster/node.ts).
 */
import type { EventEmitter } from 'node:events'

import type { Aedes } from 'aedes'
import type { Logger } from 'pino'

import type { DeadLetterOps } from '../bridge/dead-letters.js'
import type { Dps } from '../dps/service.js'
import type { HubContext } from '../config/home.js'
import type { C2dReceived, C2dSettlement, FeedbackAck, FeedbackQueue, FeedbackStatus, SystemProperties } from '../iothub/index.js'
import type { BrokerSettings, TwinKey, TwinRecord } from '../registry/types.js'
import type { RefusalLog } from './limits.js'
import type { BrokerRuntime } from './runtime.js'
import type { SessionTable } from './session.js'

/** A telemetry message on the hub's event stream (what `monitor` prints). */
export interface HubEvent {
  deviceId: string
  moduleId?: string
  properties: Record<string, string>
  systemProperties: SystemProperties
  payload: Buffer
  enqueuedTime: string
  /** Route that delivered it to `$upstream`. */
  route?: string
  /** A module output: its name, and the sinks the routes sent it to (`$upstream`, `<module>/<input>`). */
  outputName?: string
  routedTo?: string[]
  /** How the sender authenticated and its identity's generation id (Event Hubs annotations), when it sent as itself. */
  authMethod?: string
  generationId?: string
  /** The model id the sender announced at CONNECT (IoT Hub's `dt-dataschema` annotation), when it sent as itself. */
  modelId?: string
}

export interface MethodResult {
  status: number
  payload: unknown
}

/** What a C2D send did: delivered (or kept by a persistent session) now, or queued for the device's next subscribe. */
export interface C2dSendResult {
  messageId: string
  queued: boolean
}

export interface BrokerPublish {
  topic: string
  payload: Buffer | string
  qos?: 0 | 1
  retain?: boolean
}

/** What the IoT Hub primitives need from the broker. */
export interface IotHubHost {
  readonly ctx: HubContext
  readonly log: Logger
  readonly sessions: SessionTable
  readonly maxMessageSize: number
  publish(packet: BrokerPublish): Promise<void>
  /** The subscriptions a persistent session holds in persistence (online or not); [] for none. */
  storedSubscriptions(clientId: string): Promise<{ topic: string; qos: number }[]>
  /** `$upstream` is a parent broker: telemetry goes there (store and forward) instead of the event stream. */
  readonly upstream: { readonly enabled: boolean; enqueueTelemetry(topic: string, body: Buffer): void }
  /** Cluster: run a direct method on the node the device is connected to. */
  invokeRemote?(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number, notOnline: Error): Promise<MethodResult>
}

/** What a cluster node needs from the broker it runs in. */
export interface ClusterHost {
  readonly aedes: Aedes
  readonly ctx: HubContext
  readonly host: string
  readonly ports: BrokerRuntime['ports']
  readonly sessions: SessionTable
  readonly writesRuntimeFile: boolean
  runtime(): BrokerRuntime
  invokeMethodLocally(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number): Promise<MethodResult>
}

/** The IoT Hub operations the service side (control API, REST) calls. */
export interface ServiceIotHub {
  /** 'event': telemetry reaching `$upstream`; 'output': module outputs (both HubEvent). */
  readonly events: EventEmitter
  updateTwin(key: TwinKey, update: { desired?: unknown; tags?: unknown }, opts?: { ifMatch?: string; replace?: boolean }): Promise<TwinRecord>
  isConnected(key: TwinKey): boolean
  /** Messages in the device's C2D queue (the twin's cloudToDeviceMessageCount). */
  c2dDepth(deviceId: string): number
  /** The client's last message or subscribe on this broker (the twin's lastActivityTime). */
  lastActivityTime(key: TwinKey): string | undefined
  invokeMethod(key: TwinKey, methodName: string, payload: unknown, timeoutSecs: number): Promise<MethodResult>
  sendC2d(deviceId: string, data: Buffer, properties?: Record<string, string>, sys?: SystemProperties, opts?: { ack?: FeedbackAck }): Promise<C2dSendResult>
  purgeC2d(deviceId: string): Promise<{ deviceId: string; totalMessagesPurged: number }>
  receiveC2dLocked(deviceId: string, lockSecs?: number): Promise<C2dReceived | undefined>
  settleC2d(deviceId: string, lockToken: string, how: C2dSettlement): Promise<{ deviceId: string; etag: string; settled: C2dSettlement; outcome?: FeedbackStatus }>
  /** C2D delivery feedback waiting for the service to read it. */
  readonly feedback: FeedbackQueue
  sendModuleInput(deviceId: string, moduleId: string, inputName: string, data: Buffer, properties?: Record<string, string>, sys?: SystemProperties): Promise<void>
}

/** What the control API and the service REST API need from the broker. */
export interface ServiceHost {
  readonly ctx: HubContext
  readonly log: Logger
  readonly iothub: ServiceIotHub
  readonly settings: Pick<BrokerSettings, 'maxEventStreamBytes'>
  readonly refusals: RefusalLog
  /** The bridge's dead-letter store (messages the parent refused). */
  readonly deadLetters: DeadLetterOps
  /** The Device Provisioning Service (its REST API shares the HTTPS port). */
  readonly dps: { service(): Dps }
  status(): unknown
}
