/**
 * The cluster registry backend: the same `Store` as SqliteStore, on Redis, so several broker
 * nodes (and every CLI process) share one hub. Keys live under `edgemq:<hub>:`:
 *
 *   hub                 string  the HubRecord (JSON)
 *   devices             hash    deviceId → DeviceRecord
 *   modules:<deviceId>  hash    moduleId → ModuleRecord
 *   twins               hash    "<deviceId>\0<moduleId>" (moduleId '' for a device) → TwinRecord
 *   dps:<kind>          hash    id → DPS document (enrollment, enrollmentGroup, registration)
 *   seq                 string  last change seq (INCR)
 *   changes             zset    score seq → Change (JSON); trimmed to the last 10,000
 *   (channel) changes   pub/sub the seq of each new change, so followers react at once
 *
 * Every write is one Lua script: the record and its change entry commit together (Redis runs
 * a script atomically), like SqliteStore's transactions. `updateTwin`/`updateHub` run the
 * caller's `mutate` in JS, then commit with a compare-and-set script (retried on a race), so
 * no WATCH connection is needed and concurrent writers never lose an update.
 */
import type { Redis } from 'ioredis'

import { connectRedis } from '../cluster/redis.js'
import { ConflictError, NotFoundError } from '../errors.js'
import { emptyTwin } from './twin-record.js'
import type { Change, DeviceRecord, DpsDocKind, HubRecord, ModuleRecord, Store, TwinKey, TwinRecord } from './types.js'

export const CHANGE_FEED_KEEP = 10_000

export function hubPrefix(hubName: string): string {
  return `edgemq:${hubName}:`
}

// Shared Lua: append one change entry, trim the feed now and then, notify followers.
const CHANGE_FN = `
local P = ARGV[1]
local function change(kind, op, d, m)
  local seq = redis.call('INCR', P .. 'seq')
  local c = { seq = seq, kind = kind, op = op }
  if d ~= nil and d ~= '' then c.deviceId = d end
  if m ~= nil and m ~= '' then c.moduleId = m end
  redis.call('ZADD', P .. 'changes', seq, cjson.encode(c))
  if seq % 500 == 0 then redis.call('ZREMRANGEBYSCORE', P .. 'changes', '-inf', seq - ${CHANGE_FEED_KEEP}) end
  redis.call('PUBLISH', P .. 'changes', tostring(seq))
end
`

const SCRIPTS = {
  // ARGV: P, hubJson, force('1'|'0')
  initHub: `${CHANGE_FN}
local exists = redis.call('EXISTS', P .. 'hub') == 1
if exists and ARGV[3] ~= '1' then return 0 end
if exists then
  for _, d in ipairs(redis.call('HKEYS', P .. 'devices')) do redis.call('DEL', P .. 'modules:' .. d) end
  redis.call('DEL', P .. 'devices', P .. 'twins', P .. 'dps:enrollment', P .. 'dps:enrollmentGroup', P .. 'dps:registration')
end
redis.call('SET', P .. 'hub', ARGV[2])
if exists then change('hub', 'replace') else change('hub', 'create') end
return 1`,
  // ARGV: P, old, new  → 1 ok, 0 raced, -1 missing
  casHub: `${CHANGE_FN}
local cur = redis.call('GET', P .. 'hub')
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('SET', P .. 'hub', ARGV[3])
change('hub', 'update')
return 1`,
  // ARGV: P, deviceId, doc, twin
  createDevice: `${CHANGE_FN}
if redis.call('HSETNX', P .. 'devices', ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('HSET', P .. 'twins', ARGV[2] .. '\\0', ARGV[4])
change('device', 'create', ARGV[2])
return 1`,
  // ARGV: P, deviceId, doc
  putDevice: `${CHANGE_FN}
if redis.call('HEXISTS', P .. 'devices', ARGV[2]) == 0 then return 0 end
redis.call('HSET', P .. 'devices', ARGV[2], ARGV[3])
change('device', 'update', ARGV[2])
return 1`,
  // ARGV: P, deviceId
  deleteDevice: `${CHANGE_FN}
local d = ARGV[2]
if redis.call('HDEL', P .. 'devices', d) == 0 then return 0 end
for _, m in ipairs(redis.call('HKEYS', P .. 'modules:' .. d)) do redis.call('HDEL', P .. 'twins', d .. '\\0' .. m) end
redis.call('DEL', P .. 'modules:' .. d)
redis.call('HDEL', P .. 'twins', d .. '\\0')
change('device', 'delete', d)
return 1`,
  // ARGV: P, deviceId, moduleId, doc, twin → 1 ok, 0 exists, -1 no device
  createModule: `${CHANGE_FN}
if redis.call('HEXISTS', P .. 'devices', ARGV[2]) == 0 then return -1 end
if redis.call('HSETNX', P .. 'modules:' .. ARGV[2], ARGV[3], ARGV[4]) == 0 then return 0 end
redis.call('HSET', P .. 'twins', ARGV[2] .. '\\0' .. ARGV[3], ARGV[5])
change('module', 'create', ARGV[2], ARGV[3])
return 1`,
  // ARGV: P, deviceId, moduleId, doc
  putModule: `${CHANGE_FN}
if redis.call('HEXISTS', P .. 'modules:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('HSET', P .. 'modules:' .. ARGV[2], ARGV[3], ARGV[4])
change('module', 'update', ARGV[2], ARGV[3])
return 1`,
  // ARGV: P, deviceId, moduleId
  deleteModule: `${CHANGE_FN}
if redis.call('HDEL', P .. 'modules:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('HDEL', P .. 'twins', ARGV[2] .. '\\0' .. ARGV[3])
change('module', 'delete', ARGV[2], ARGV[3])
return 1`,
  // ARGV: P, deviceId, moduleId, old, new, op → 1 ok, 0 raced, -1 missing
  casTwin: `${CHANGE_FN}
local f = ARGV[2] .. '\\0' .. ARGV[3]
local cur = redis.call('HGET', P .. 'twins', f)
if not cur then return -1 end
if cur ~= ARGV[4] then return 0 end
redis.call('HSET', P .. 'twins', f, ARGV[5])
change('twin', ARGV[6], ARGV[2], ARGV[3])
return 1`,
} as const

type ScriptName = keyof typeof SCRIPTS

function twinField(key: TwinKey): string {
  return `${key.deviceId}\0${key.moduleId ?? ''}`
}

function byId<T>(get: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => (get(a) < get(b) ? -1 : get(a) > get(b) ? 1 : 0)
}

/** A bounded wait between compare-and-set retries, so racing writers spread out. */
function jitter(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)))
}

export interface RedisStoreOptions {
  /** First-connection budget (ms). */
  connectTimeoutMs?: number
}

export class RedisStore implements Store {
  readonly kind = 'redis'
  readonly prefix: string
  private subscriber?: Redis
  private readonly watchers = new Set<() => void>()
  private closed = false

  private constructor(
    readonly redis: Redis,
    readonly url: string,
    readonly hubName: string,
  ) {
    this.prefix = hubPrefix(hubName)
  }

  /** Connects (clear error within a few seconds when Redis is unreachable or refuses the password). */
  static async open(url: string, hubName: string, opts: RedisStoreOptions = {}): Promise<RedisStore> {
    const redis = await connectRedis(url, { connectTimeoutMs: opts.connectTimeoutMs, name: `edgemq-store-${process.pid}` })
    return new RedisStore(redis, url, hubName)
  }

  private async run(name: ScriptName, ...args: string[]): Promise<number> {
    return Number(await this.redis.eval(SCRIPTS[name], 0, this.prefix, ...args))
  }

  private k(suffix: string): string {
    return this.prefix + suffix
  }

  async getHub(): Promise<HubRecord | undefined> {
    const doc = await this.redis.get(this.k('hub'))
    return doc ? (JSON.parse(doc) as HubRecord) : undefined
  }

  async initHub(hub: HubRecord, opts: { force?: boolean } = {}): Promise<boolean> {
    return (await this.run('initHub', JSON.stringify(hub), opts.force ? '1' : '0')) === 1
  }

  async updateHub(mutate: (hub: HubRecord) => HubRecord): Promise<HubRecord> {
    for (let attempt = 0; ; attempt++) {
      const old = await this.redis.get(this.k('hub'))
      if (old === null) throw new NotFoundError('no hub in this home', 'run `edgemq hub init`')
      const next = mutate(JSON.parse(old) as HubRecord)
      const r = await this.run('casHub', old, JSON.stringify(next))
      if (r === 1) return next
      if (r === -1) throw new NotFoundError('no hub in this home', 'run `edgemq hub init`')
      await jitter(attempt)
    }
  }

  async createDevice(device: DeviceRecord): Promise<void> {
    const r = await this.run('createDevice', device.deviceId, JSON.stringify(device), JSON.stringify(emptyTwin()))
    if (r === 0) throw new ConflictError(`device "${device.deviceId}" already exists`, 'pick another id, or `edgemq device show ' + device.deviceId + '`')
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const doc = await this.redis.hget(this.k('devices'), deviceId)
    return doc ? (JSON.parse(doc) as DeviceRecord) : undefined
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (await this.redis.hvals(this.k('devices'))).map((d) => JSON.parse(d) as DeviceRecord).sort(byId((d) => d.deviceId))
  }

  async putDevice(device: DeviceRecord): Promise<void> {
    if ((await this.run('putDevice', device.deviceId, JSON.stringify(device))) === 0) throw new NotFoundError(`device "${device.deviceId}" not found`)
  }

  async deleteDevice(deviceId: string): Promise<boolean> {
    return (await this.run('deleteDevice', deviceId)) === 1
  }

  async createModule(module: ModuleRecord): Promise<void> {
    const r = await this.run('createModule', module.deviceId, module.moduleId, JSON.stringify(module), JSON.stringify(emptyTwin()))
    if (r === -1) throw new NotFoundError(`device "${module.deviceId}" not found`, 'create it first with `edgemq device create ' + module.deviceId + '`')
    if (r === 0) throw new ConflictError(`module "${module.moduleId}" already exists on device "${module.deviceId}"`)
  }

  async getModule(deviceId: string, moduleId: string): Promise<ModuleRecord | undefined> {
    const doc = await this.redis.hget(this.k(`modules:${deviceId}`), moduleId)
    return doc ? (JSON.parse(doc) as ModuleRecord) : undefined
  }

  async listModules(deviceId: string): Promise<ModuleRecord[]> {
    return (await this.redis.hvals(this.k(`modules:${deviceId}`))).map((d) => JSON.parse(d) as ModuleRecord).sort(byId((m) => m.moduleId))
  }

  async putModule(module: ModuleRecord): Promise<void> {
    const r = await this.run('putModule', module.deviceId, module.moduleId, JSON.stringify(module))
    if (r === 0) throw new NotFoundError(`module "${module.moduleId}" not found on device "${module.deviceId}"`)
  }

  async deleteModule(deviceId: string, moduleId: string): Promise<boolean> {
    return (await this.run('deleteModule', deviceId, moduleId)) === 1
  }

  async getTwin(key: TwinKey): Promise<TwinRecord | undefined> {
    const doc = await this.redis.hget(this.k('twins'), twinField(key))
    return doc ? (JSON.parse(doc) as TwinRecord) : undefined
  }

  async updateTwin(key: TwinKey, mutate: (twin: TwinRecord) => TwinRecord, op: string): Promise<TwinRecord> {
    const notFound = () => new NotFoundError(`${key.moduleId ? `module "${key.moduleId}" on device "${key.deviceId}"` : `device "${key.deviceId}"`} not found`)
    for (let attempt = 0; ; attempt++) {
      const old = await this.redis.hget(this.k('twins'), twinField(key))
      if (old === null) throw notFound()
      const next = mutate(JSON.parse(old) as TwinRecord)
      const r = await this.run('casTwin', key.deviceId, key.moduleId ?? '', old, JSON.stringify(next), op)
      if (r === 1) return next
      if (r === -1) throw notFound()
      await jitter(attempt)
    }
  }

  // DPS documents: one HSET/HDEL each is atomic; no change-feed entry (the broker reads them per request).
  async getDpsDoc(kind: DpsDocKind, id: string): Promise<unknown> {
    const doc = await this.redis.hget(this.k(`dps:${kind}`), id)
    return doc ? (JSON.parse(doc) as unknown) : undefined
  }

  async listDpsDocs(kind: DpsDocKind): Promise<unknown[]> {
    const all = await this.redis.hgetall(this.k(`dps:${kind}`))
    return Object.keys(all)
      .sort()
      .map((id) => JSON.parse(all[id]) as unknown)
  }

  async putDpsDoc(kind: DpsDocKind, id: string, doc: unknown): Promise<void> {
    await this.redis.hset(this.k(`dps:${kind}`), id, JSON.stringify(doc))
  }

  async deleteDpsDoc(kind: DpsDocKind, id: string): Promise<boolean> {
    return (await this.redis.hdel(this.k(`dps:${kind}`), id)) > 0
  }

  async changesSince(seq: number): Promise<Change[]> {
    const rows = await this.redis.zrangebyscore(this.k('changes'), `(${seq}`, '+inf', 'LIMIT', 0, 5000)
    return rows.map((r) => JSON.parse(r) as Change)
  }

  async lastChangeSeq(): Promise<number> {
    return Number((await this.redis.get(this.k('seq'))) ?? 0)
  }

  /**
   * Calls `onChange` as soon as any process appends to the change feed (Redis pub/sub), so a
   * follower need not wait for its next poll. Best effort: a missed notification is caught by
   * the follower's poll. Returns an unsubscribe function.
   */
  async watch(onChange: () => void): Promise<() => void> {
    if (!this.subscriber) {
      const sub = this.redis.duplicate({ connectionName: `edgemq-store-sub-${process.pid}` })
      sub.on('error', () => undefined)
      sub.on('message', () => {
        for (const w of this.watchers) w()
      })
      // A reconnect may have missed notifications: tell followers to look.
      sub.on('ready', () => {
        for (const w of this.watchers) w()
      })
      this.subscriber = sub
      await sub.subscribe(this.k('changes'))
    }
    this.watchers.add(onChange)
    return () => this.watchers.delete(onChange)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.watchers.clear()
    const quit = async (r: Redis) => {
      // QUIT would wait for a Redis that is away: only ask a connection that is up.
      if (r.status === 'ready') {
        try {
          await Promise.race([r.quit(), new Promise((res) => setTimeout(res, 500))])
        } catch {
          /* already gone */
        }
      }
      r.disconnect()
    }
    await Promise.all([this.subscriber ? quit(this.subscriber) : undefined, quit(this.redis)])
  }
}

/** Narrowing helper for callers that accept any Store. */
export function isRedisStore(store: unknown): store is RedisStore {
  return store instanceof RedisStore
}

