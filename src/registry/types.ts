/**
 * The registry's data model: what IoT Hub keeps per device, module and twin. Plain data so
 * both backends (SQLite embedded default, Redis for clusters) can store it as JSON.
 */
export type IdentityStatus = 'enabled' | 'disabled'

/** IoT Hub's authentication types (az prints these names). */
export type AuthType = 'sas' | 'selfSigned' | 'certificateAuthority'

export interface IdentityRecord {
  deviceId: string
  /** Set for modules. */
  moduleId?: string
  authType: AuthType
  primaryKey?: string
  secondaryKey?: string
  primaryThumbprint?: string
  secondaryThumbprint?: string
  generationId: string
  etag: string
  createdAt: string
  updatedAt: string
}

export interface DeviceRecord extends IdentityRecord {
  moduleId?: undefined
  status: IdentityStatus
  statusReason?: string
  statusUpdatedAt: string
  /** IoT Edge device (capabilities.iotEdge). */
  edge: boolean
  /** Parent edge device id (az `--pd`); gives `parentScopes`/`deviceScope`. */
  parentId?: string
}

export interface ModuleRecord extends IdentityRecord {
  moduleId: string
  managedBy?: string
}

export interface TwinRecord {
  tags: Record<string, unknown>
  desired: Record<string, unknown>
  reported: Record<string, unknown>
  desiredVersion: number
  reportedVersion: number
  /** Twin version: increments on every change. */
  version: number
  etag: string
  /** `$metadata` trees of desired / reported (src/twin/metadata.ts). */
  desiredMetadata?: Record<string, unknown>
  reportedMetadata?: Record<string, unknown>
}

export interface ServicePolicy {
  name: string
  primaryKey: string
  secondaryKey: string
  rights: string[]
}

/** Broker settings with IoT Edge's defaults (PROTOCOL.md §7). */
export interface BrokerSettings {
  maxInflight: number
  maxQueued: number
  whenFull: 'drop_new' | 'drop_old'
  sessionExpirySecs: number
  maxMessageSize: number
  /** Open MQTT connections (both ports); more are closed on accept. */
  maxConnections: number
  /** Connections that have not yet had a CONNECT accepted; more are closed on accept. */
  maxPendingConnections: number
  /** A connection with no accepted CONNECT after this long is closed. */
  connectTimeoutSecs: number
  /** Largest packet before CONNECT is accepted (a CONNECT with its will); checked from the fixed header. */
  maxConnectPacketBytes: number
  /** Longer client ids get CONNACK 0x02 at once (IoT Hub: 128 + '/' + 128). */
  maxClientIdLength: number
  /** Live subscriptions per client; SUBACK 0x80 beyond. */
  maxSubscriptionsPerClient: number
  /** QoS 0 messages to a client with more than this many bytes unsent are dropped (counted). */
  maxQueuedBytes: number
  /** An event-stream reader (`edgemq monitor`) with more than this many bytes unsent is disconnected. */
  maxEventStreamBytes: number
  /**
   * A client whose socket stays full this long while a QoS 1/2 delivery waits is disconnected
   * (aedes' drainTimeout, 60 s there): deliveries to everyone else wait on it at most this long,
   * and a persistent session keeps what follows in its bounded queue.
   */
  drainTimeoutSecs: number
  /**
   * The built-in Event Hubs-compatible endpoint (src/eventhubs/): partitions of its event log (fixed
   * once the log holds events, as IoT Hub fixes it at creation), and how long and how many events
   * per partition it keeps (whichever bound is hit first; IoT Hub's default retention is 1 day).
   */
  eventHubPartitions: number
  eventRetentionSecs: number
  eventRetentionCount: number
  /** Body bytes kept per partition (the log of an in-memory hub is memory: this bounds it). */
  eventRetentionBytes: number
  /** The bridge's first reconnect delay; it doubles per failed attempt, with jitter, up to 30 s. */
  bridgeBackoffMs: number
}

export const DEFAULT_BROKER_SETTINGS: BrokerSettings = {
  maxInflight: 16,
  maxQueued: 1000,
  whenFull: 'drop_new',
  sessionExpirySecs: 60 * 24 * 3600,
  maxMessageSize: 256 * 1024,
  maxConnections: 10_000,
  maxPendingConnections: 256,
  connectTimeoutSecs: 10,
  maxConnectPacketBytes: 16 * 1024,
  maxClientIdLength: 257,
  maxSubscriptionsPerClient: 256,
  maxQueuedBytes: 1024 * 1024,
  maxEventStreamBytes: 4 * 1024 * 1024,
  drainTimeoutSecs: 5,
  eventHubPartitions: 4,
  eventRetentionSecs: 24 * 3600,
  eventRetentionCount: 100_000,
  eventRetentionBytes: 32 * 1024 * 1024,
  bridgeBackoffMs: 500,
}

export interface UpstreamSettings {
  hostName: string
  gatewayHostName: string
  deviceId: string
  sharedAccessKey: string
  port: number
  caFile?: string
}

/** A consumer group of the built-in endpoint (`$Default` is implicit and never stored). */
export interface ConsumerGroupRecord {
  name: string
  createdAt: string
}

/** A deployment as az prints it (IoT Hub's Configuration object). */
export interface EdgeDeployment {
  id: string
  schemaVersion: '1.0'
  labels: Record<string, string> | null
  content: { modulesContent: Record<string, unknown> }
  contentType: 'assignment'
  targetCondition: string
  priority: number
  createdTimeUtc: string
  lastUpdatedTimeUtc: string
  etag: string
  metrics: { queries: Record<string, string>; results: Record<string, number> }
  systemMetrics: {
    queries: Record<string, string>
    results: { targetedCount: number; appliedCount: number; reportedSuccessfulCount: number; reportedFailedCount: number }
  }
}

/** Kept in the hub record: the deployments, and which one each edge device last got. */
export interface EdgeDeploymentState {
  deployments: Record<string, EdgeDeployment>
  applied: Record<string, { id: string; etag: string }>
}

/** The hub's Device Provisioning Service (src/dps/): its id scope, the host it assigns, its service policy. */
export interface DpsSettings {
  /** `0ne` + 8 hex digits, as DPS id scopes look. */
  idScope: string
  /** `assignedHub` in registration results: a host name devices can reach (default `localhost`). */
  assignedHub: string
  /** `provisioningserviceowner` (DPS's default policy) for the service REST API and `dps connection-string show`. */
  policies: ServicePolicy[]
}

export interface HubRecord {
  name: string
  /** `<name>.azure-devices.net`: what usernames and SAS resources carry. */
  hostName: string
  edgeDeviceId: string
  createdAt: string
  policies: ServicePolicy[]
  broker: BrokerSettings
  upstream?: UpstreamSettings
  /** Consumer groups created on the built-in Event Hubs-compatible endpoint (`hub consumer-group create`). */
  consumerGroups?: ConsumerGroupRecord[]
  /** IoT Edge automatic deployments (src/deployment/edge-deployments.ts). */
  edgeDeployments?: EdgeDeploymentState
  /** Absent in homes made before DPS; openHub adds it. */
  dps?: DpsSettings
}

export type ChangeKind = 'hub' | 'device' | 'module' | 'twin'

/** One entry of the change feed a running broker follows to react to other processes' writes. */
export interface Change {
  seq: number
  kind: ChangeKind
  deviceId?: string
  moduleId?: string
  /** 'create' | 'update' | 'delete' | 'desired' | 'reported' | 'tags' */
  op: string
}

/** What the Device Provisioning Service keeps (src/dps/): REST-shaped JSON documents by id. */
export type DpsDocKind = 'enrollment' | 'enrollmentGroup' | 'registration'

export interface TwinKey {
  deviceId: string
  moduleId?: string
}

/**
 * The storage seam. Async so a network backend (Redis) fits; every write that other
 * processes must notice appends to the change feed in the same transaction.
 */
export interface Store {
  readonly kind: string
  getHub(): Promise<HubRecord | undefined>
  /** Creates the hub if none exists (or replaces it with `force`). Returns false if one existed. */
  initHub(hub: HubRecord, opts?: { force?: boolean }): Promise<boolean>
  updateHub(mutate: (hub: HubRecord) => HubRecord): Promise<HubRecord>

  createDevice(device: DeviceRecord): Promise<void>
  getDevice(deviceId: string): Promise<DeviceRecord | undefined>
  listDevices(): Promise<DeviceRecord[]>
  putDevice(device: DeviceRecord): Promise<void>
  deleteDevice(deviceId: string): Promise<boolean>

  createModule(module: ModuleRecord): Promise<void>
  getModule(deviceId: string, moduleId: string): Promise<ModuleRecord | undefined>
  listModules(deviceId: string): Promise<ModuleRecord[]>
  putModule(module: ModuleRecord): Promise<void>
  deleteModule(deviceId: string, moduleId: string): Promise<boolean>

  getTwin(key: TwinKey): Promise<TwinRecord | undefined>
  /** Atomic read-modify-write of one twin; `mutate` may throw to abort. */
  updateTwin(key: TwinKey, mutate: (twin: TwinRecord) => TwinRecord, op: string): Promise<TwinRecord>

  /** DPS documents (enrollments, enrollment groups, registration states), JSON by kind and id. */
  getDpsDoc(kind: DpsDocKind, id: string): Promise<unknown>
  listDpsDocs(kind: DpsDocKind): Promise<unknown[]>
  putDpsDoc(kind: DpsDocKind, id: string, doc: unknown): Promise<void>
  deleteDpsDoc(kind: DpsDocKind, id: string): Promise<boolean>

  /** Change feed: entries after `seq`, oldest first. */
  changesSince(seq: number): Promise<Change[]>
  lastChangeSeq(): Promise<number>
  /**
   * Optional push notification of new change-feed entries (Redis pub/sub), so followers react
   * before their next poll. Returns an unsubscribe function. SQLite has none: followers poll.
   */
  watch?(onChange: () => void): Promise<() => void>
  /**
   * Optional: a value that differs after any write committed to the registry, by this process or
   * any other (SQLite: `PRAGMA data_version` and this connection's own writes). Readers may cache
   * records while it stays the same (the broker's CONNECT lookups, broker/registry-cache.ts).
   */
  dataVersion?(): string
  close(): Promise<void>
}
