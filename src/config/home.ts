/**
 * The home directory: one hub's state (PRODUCT.md "State").
 *   --home > $EDGEMQ_HOME > ~/.edgemq
 *   registry.db   devices, modules, twins, hub config, change feed (SQLite, WAL)
 *   pki/          root CA, server cert (keys 0600)
 *   broker.json   the running broker's pid and ports (written atomically)
 *   persistence/  MQTT sessions, retained, queued QoS1 (aedes-persistence-level)
 */
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

import { EdgeMqError } from '../errors.js'
import { generateKey, Registry } from '../registry/registry.js'
import { SqliteStore } from '../registry/sqlite-store.js'
import { DEFAULT_BROKER_SETTINGS, type HubRecord, type Store } from '../registry/types.js'
import { validateDeviceId } from '../registry/validate.js'
import { hubHostName } from '../sas/resource.js'

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
  logs: string
}

export function homePaths(home: string): HomePaths {
  return {
    home,
    registry: join(home, 'registry.db'),
    pki: join(home, 'pki'),
    brokerState: join(home, 'broker.json'),
    persistence: join(home, 'persistence'),
    forward: join(home, 'forward.db'),
    logs: join(home, 'broker.log'),
  }
}

/** Creates the home 0700 (secrets live in it); a file in the way gets a clear error. */
export function ensureHomeDir(home: string): void {
  try {
    if (existsSync(home)) {
      if (!statSync(home).isDirectory()) throw new EdgeMqError(`home "${home}" is not a directory`, { hint: 'pass another --home' })
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
  const rights = ['RegistryWrite', 'ServiceConnect', 'DeviceConnect']
  return {
    name,
    hostName: hubHostName(name),
    edgeDeviceId,
    createdAt: new Date().toISOString(),
    policies: [
      { name: 'iothubowner', primaryKey: generateKey(), secondaryKey: generateKey(), rights },
      { name: 'service', primaryKey: generateKey(), secondaryKey: generateKey(), rights: ['ServiceConnect'] },
      { name: 'registryReadWrite', primaryKey: generateKey(), secondaryKey: generateKey(), rights: ['RegistryWrite'] },
    ],
    broker: { ...DEFAULT_BROKER_SETTINGS },
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

/** Opens the home's registry, creating the default hub and its edge device when asked. */
export async function openHub(opts: OpenHubOptions): Promise<HubContext> {
  const paths = homePaths(opts.home)
  if (!opts.inMemory) ensureHomeDir(opts.home)
  const store = opts.store ?? new SqliteStore(opts.inMemory ? ':memory:' : paths.registry)
  if (!opts.inMemory) {
    try {
      chmodSync(paths.registry, 0o600)
    } catch {
      /* not ours to chmod (shared home): keep going */
    }
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
  const registry = new Registry(store, hub)
  if (!(await store.getDevice(hub.edgeDeviceId))) {
    await registry.createDevice({ deviceId: hub.edgeDeviceId, edge: true }).catch((err: unknown) => {
      if (!(err instanceof EdgeMqError && err.code === 'CONFLICT')) throw err
    })
  }
  await registry.ensureEdgeModules(hub.edgeDeviceId)
  return { home: opts.home, paths, store, hub, registry, createdHub, close: () => store.close() }
}

/** `hub init`: a new hub (and edge device) in the home; `force` wipes the old registry. */
export async function initHub(home: string, opts: NewHubOptions & { force?: boolean; inMemory?: boolean }): Promise<HubContext> {
  const paths = homePaths(home)
  if (!opts.inMemory) ensureHomeDir(home)
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
