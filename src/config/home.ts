/**
 * The home directory: one hub's state (PRODUCT.md "State").
 *   --home > $EDGEMQ_HOME > ~/.edgemq
 *   registry.db   devices, modules, twins, hub config, change feed (SQLite, WAL)
 *   pki/          root CA, server cert (keys 0600)
 *   broker.json   the running broker's pid and ports (written atomically)
 *   persistence/  MQTT sessions, retained, queued QoS1 (aedes-persistence-level)
 *   eventhubs.db  the built-in Event Hubs-compatible endpoint's event log (SQLite, WAL)
 *   store.json    only for a hub on Redis (`hub init --store redis://…`): {url, hub}; then the
 *                 registry and MQTT state live in Redis and every command with this home goes there
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

import { EdgeMqError, NotFoundError } from '../errors.js'
import { generateKey, Registry } from '../registry/registry.js'
import { SqliteStore } from '../registry/sqlite-store.js'

/** ioredis costs ~130 ms to load: only homes on Redis (clusters) pay for it, not every CLI command. */
const redisStore = async () => (await import('../registry/redis-store.js')).RedisStore
import { DEFAULT_BROKER_SETTINGS, type HubRecord, type Store } from '../registry/types.js'
import { DEFAULT_POLICY_RIGHTS } from '../registry/rights.js'
import { validateDeviceId } from '../registry/validate.js'
import { newDpsSettings } from '../dps/settings.js'
import { hubHostName } from '../sas/resource.js'
import { restrictSqliteFiles, writeFileAtomicSync } from '../util/fs.js'

export const DEFAULT_HUB_NAME = 'edgemq'
export const DEFAULT_EDGE_DEVICE = 'edge-gateway'

export function resolveHome(flag?: string): string {
  return resolve(flag || process.env.EDGEMQ_HOME || join(homedir(), '.edgemq'))
}

export interface HomePaths {
  home: string
  registry: string
  pki: string
  brokerState: string
  persistence: string
  /** Store-and-forward queue for $upstream (SQLite). */
  forward: string
  /** The built-in Event Hubs-compatible endpoint's event log (SQLite). */
  eventHubs: string
  logs: string
  /** Pointer to a Redis-backed hub (absent for the embedded SQLite hub). */
  storePointer: string
}

export function homePaths(home: string): HomePaths {
  return {
    home,
    registry: join(home, 'registry.db'),
    pki: join(home, 'pki'),
    brokerState: join(home, 'broker.json'),
    persistence: join(home, 'persistence'),
    forward: join(home, 'forward.db'),
    eventHubs: join(home, 'eventhubs.db'),
    logs: join(home, 'broker.log'),
    storePointer: join(home, 'store.json'),
  }
}

/** Creates the home 0700 (secrets live in it); a file in the way gets a clear error. */
/** Copies the parent hub's root CA into `<home>/pki/upstream-ca.pem` (for `hub set-upstream --ca`); returns its path. */
export function installUpstreamCa(paths: HomePaths, source: string): string {
  if (!existsSync(source)) throw new NotFoundError(`CA file "${source}" not found`)
  mkdirSync(paths.pki, { recursive: true, mode: 0o700 })
  const caFile = join(paths.pki, 'upstream-ca.pem')
  copyFileSync(source, caFile)
  return caFile
}

export function ensureHomeDir(home: string): void {
  try {
    if (existsSync(home)) {
      const st = statSync(home)
      if (!st.isDirectory()) throw new EdgeMqError(`home "${home}" is not a directory`, { hint: 'pass another --home' })
      // Keys and tokens live here: a home made 0755 by hand (or by an older edgemq) is tightened.
      if (process.platform !== 'win32' && (st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(home, st.mode & 0o700)
    } else {
      mkdirSync(home, { recursive: true, mode: 0o700 })
      chmodSync(home, 0o700)
    }
  } catch (err) {
    if (err instanceof EdgeMqError) throw err
    throw new EdgeMqError(`cannot use home "${home}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'check permissions, or pass another --home / set EDGEMQ_HOME',
    })
  }
}

export interface NewHubOptions {
  name?: string
  edgeDeviceId?: string
}

export function newHubRecord(opts: NewHubOptions = {}): HubRecord {
  const name = opts.name ?? DEFAULT_HUB_NAME
  if (!/^[A-Za-z0-9-]{3,50}$/.test(name)) {
    throw new EdgeMqError(`invalid hub name "${name}"`, { hint: 'IoT Hub names are 3–50 letters, digits and hyphens' })
  }
  const edgeDeviceId = opts.edgeDeviceId ?? DEFAULT_EDGE_DEVICE
  validateDeviceId(edgeDeviceId, 'edge device id')
  return {
    name,
    hostName: hubHostName(name),
    edgeDeviceId,
    createdAt: new Date().toISOString(),
    // IoT Hub's five default shared access policies, with their rights (PROTOCOL.md §8).
    policies: Object.entries(DEFAULT_POLICY_RIGHTS).map(([policyName, rights]) => ({ name: policyName, primaryKey: generateKey(), secondaryKey: generateKey(), rights: [...rights] })),
    broker: { ...DEFAULT_BROKER_SETTINGS },
    dps: newDpsSettings(),
  }
}

export interface HubContext {
  home: string
  paths: HomePaths
  store: Store
  hub: HubRecord
  registry: Registry
  /** True when this call created the default hub (the CLI says so). */
  createdHub: boolean
  close(): Promise<void>
}

export interface OpenHubOptions {
  home: string
  /** Create the default hub when the home has none (every command but `hub init`). */
  createDefault?: boolean
  /** No files at all: the registry lives in memory (tests, `--in-memory`). */
  inMemory?: boolean
  hub?: NewHubOptions
  /** An already open store (in-memory hubs keep theirs). */
  store?: Store
}

/** Where a Redis-backed hub lives: the home keeps only this pointer (`<home>/store.json`). */
export interface StorePointer {
  url: string
  hub: string
}

/** The home's Redis pointer, or undefined for an embedded (SQLite) hub. */
export function readStorePointer(home: string): StorePointer | undefined {
  const file = homePaths(home).storePointer
  if (!existsSync(file)) return undefined
  let p: Partial<StorePointer>
  try {
    p = JSON.parse(readFileSync(file, 'utf8')) as Partial<StorePointer>
  } catch (err) {
    throw new EdgeMqError(`${file} is not readable: ${(err as Error).message}`, { hint: 'fix it, or run `edgemq hub init --store redis://… --force`' })
  }
  if (typeof p.url !== 'string' || typeof p.hub !== 'string') {
    throw new EdgeMqError(`${file} must hold {"url": "redis://…", "hub": "<name>"}`, { hint: 'run `edgemq hub init --store redis://…` again' })
  }
  return { url: p.url, hub: p.hub }
}

export function writeStorePointer(home: string, pointer: StorePointer): void {
  const file = homePaths(home).storePointer
  // 0600: the URL may carry the Redis password.
  writeFileAtomicSync(file, JSON.stringify(pointer, null, 2) + '\n', 0o600)
}

/** The embedded registry's hub, if this home has one (a Redis pointer must not hide it silently). */
async function embeddedHub(home: string): Promise<HubRecord | undefined> {
  const file = homePaths(home).registry
  if (!existsSync(file)) return undefined
  const s = new SqliteStore(file)
  try {
    return await s.getHub()
  } finally {
    await s.close()
  }
}

/**
 * `broker start --cluster <url>`: makes this home point at the hub on that Redis (the default
 * hub name unless the home already points there). Refuses a home whose hub is embedded.
 */
export async function attachClusterStore(home: string, url: string): Promise<StorePointer> {
  ensureHomeDir(home)
  const existing = readStorePointer(home)
  if (existing) {
    if (existing.url !== url) {
      throw new EdgeMqError(`this home's hub lives at ${existing.url}, not ${url}`, { hint: 'drop --cluster (the home already names its Redis), or use another --home' })
    }
    return existing
  }
  const local = await embeddedHub(home)
  if (local) {
    throw new EdgeMqError(`${home} holds the embedded hub "${local.name}"; a cluster node needs a hub on Redis`, {
      hint: `use another --home, or create the hub on Redis first: edgemq hub init --store ${url} --name <name> --home <dir>`,
    })
  }
  // Reach Redis before the home is repointed: a bad URL or password leaves the home as it was.
  await (await (await redisStore()).open(url, DEFAULT_HUB_NAME)).close()
  const pointer = { url, hub: DEFAULT_HUB_NAME }
  writeStorePointer(home, pointer)
  return pointer
}

/** The home's store: Redis when it holds a pointer, else the SQLite file (or memory). */
export async function openStore(home: string, inMemory?: boolean): Promise<Store> {
  if (inMemory) return new SqliteStore(':memory:')
  const pointer = readStorePointer(home)
  if (pointer) return (await redisStore()).open(pointer.url, pointer.hub)
  return new SqliteStore(homePaths(home).registry)
}

/** Opens the home's registry, creating the default hub and its edge device when asked. */
export async function openHub(opts: OpenHubOptions): Promise<HubContext> {
  const paths = homePaths(opts.home)
  if (!opts.inMemory) ensureHomeDir(opts.home)
  const store = opts.store ?? (await openStore(opts.home, opts.inMemory))
  if (!opts.inMemory && store.kind === 'sqlite') {
    restrictSqliteFiles(paths.registry)
  }
  let hub = await store.getHub()
  let createdHub = false
  if (!hub) {
    if (opts.createDefault === false) {
      await store.close()
      throw new EdgeMqError(`no hub in ${opts.home}`, { hint: 'create one with `edgemq hub init`' })
    }
    // Losers of a concurrent creation race read the winner's hub.
    createdHub = await store.initHub(newHubRecord(opts.hub))
    hub = (await store.getHub()) as HubRecord
  }
  // Homes made before DPS get their id scope once (a concurrent opener may win: keep its scope).
  if (!hub.dps) hub = await store.updateHub((h) => (h.dps ? h : { ...h, dps: newDpsSettings() }))
  const registry = new Registry(store, hub)
  if (!(await store.getDevice(hub.edgeDeviceId))) {
    await registry.createDevice({ deviceId: hub.edgeDeviceId, edge: true }).catch((err: unknown) => {
      if (!(err instanceof EdgeMqError && err.code === 'CONFLICT')) throw err
    })
  }
  await registry.ensureEdgeModules(hub.edgeDeviceId)
  return { home: opts.home, paths, store, hub, registry, createdHub, close: () => store.close() }
}

/**
 * `hub init --store redis://…`: the hub's state lives in Redis, the home keeps a pointer. A hub
 * of that name already in Redis is joined (another node's home), not replaced, unless `force`.
 */
async function initRedisHub(home: string, url: string, opts: NewHubOptions & { force?: boolean }): Promise<HubContext & { joined: boolean }> {
  ensureHomeDir(home)
  const record = newHubRecord(opts)
  const current = readStorePointer(home)
  if (current && !opts.force && (current.url !== url || current.hub !== record.name)) {
    throw new EdgeMqError(`${home} already points at hub "${current.hub}" on ${current.url}`, { hint: 'pass --force to repoint it, or use another --home' })
  }
  if (!current && !opts.force) {
    const local = await embeddedHub(home)
    if (local) throw new EdgeMqError(`${home} already holds the embedded hub "${local.name}"`, { hint: 'use another --home for the Redis hub, or pass --force to point this home at Redis' })
  }
  const store = await (await redisStore()).open(url, record.name)
  let joined = false
  try {
    const created = await store.initHub(record, { force: opts.force })
    if (!created) {
      const existing = (await store.getHub()) as HubRecord
      if (opts.edgeDeviceId && existing.edgeDeviceId !== opts.edgeDeviceId) {
        throw new EdgeMqError(`hub "${existing.name}" on ${url} already exists with edge device "${existing.edgeDeviceId}"`, {
          hint: 'drop --edge-device to join it, or pass --force to replace it (this deletes its devices)',
        })
      }
      joined = true
    }
  } finally {
    await store.close()
  }
  writeStorePointer(home, { url, hub: record.name })
  return { ...(await openHub({ home, createDefault: false })), joined }
}

/** `hub init`: a new hub (and edge device) in the home; `force` wipes the old registry. */
export async function initHub(home: string, opts: NewHubOptions & { force?: boolean; inMemory?: boolean; storeUrl?: string }): Promise<HubContext> {
  if (opts.storeUrl && !opts.inMemory) return initRedisHub(home, opts.storeUrl, opts)
  const paths = homePaths(home)
  if (!opts.inMemory) ensureHomeDir(home)
  if (!opts.inMemory && readStorePointer(home)) {
    if (!opts.force) throw new EdgeMqError(`${home} points at a hub on Redis (${homePaths(home).storePointer})`, { hint: 'pass --force to go back to an embedded hub, or use another --home' })
    unlinkSync(paths.storePointer)
  }
  const store = new SqliteStore(opts.inMemory ? ':memory:' : paths.registry)
  const record = newHubRecord(opts)
  const created = await store.initHub(record, { force: opts.force })
  if (!created) {
    const existing = (await store.getHub()) as HubRecord
    await store.close()
    throw new EdgeMqError(`${home} already holds hub "${existing.name}"`, { hint: 'pass --force to replace it (this deletes its devices), or use another --home' })
  }
  if (opts.inMemory) return openHub({ home, inMemory: true, createDefault: false, store })
  await store.close()
  return openHub({ home, createDefault: false })
}
