/**
 * The embedded registry backend: one SQLite file in the home, WAL mode, shared by the broker
 * and every CLI process. SQLite gives what the home needs for free: atomic multi-row
 * transactions, crash safety under `kill -9`, and cross-process locking (busy timeout), so 50
 * concurrent `device create` processes all succeed without a lock file of our own.
 */
import Database from 'better-sqlite3'

import { ConflictError, EdgeMqError, NotFoundError } from '../errors.js'
import type { Change, ChangeKind, DeviceRecord, DpsDocKind, HubRecord, ModuleRecord, Store, TwinKey, TwinRecord } from './types.js'
import { emptyTwin } from './twin-record.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hub (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS modules (device_id TEXT NOT NULL, module_id TEXT NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY (device_id, module_id));
CREATE TABLE IF NOT EXISTS twins (device_id TEXT NOT NULL, module_id TEXT NOT NULL DEFAULT '', doc TEXT NOT NULL,
  PRIMARY KEY (device_id, module_id));
CREATE TABLE IF NOT EXISTS dps (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
  device_id TEXT, module_id TEXT, op TEXT NOT NULL);
`

/** Keep the change feed short: followers poll every few hundred ms. */
const CHANGE_FEED_KEEP = 10_000

type Row = { doc: string }

function isBusy(err: unknown): boolean {
  return err instanceof Error && 'code' in err && (err as { code: string }).code.startsWith('SQLITE_BUSY')
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  private readonly db: Database.Database
  private changeCount = 0

  constructor(readonly file: string) {
    try {
      this.db = new Database(file, { timeout: 15_000 })
    } catch (err) {
      throw new EdgeMqError(`cannot open the registry ${file}: ${(err as Error).message}`, {
        hint: 'check that the home directory exists and is writable, or pass another --home',
      })
    }
    try {
      this.db.pragma('busy_timeout = 15000')
      if (file !== ':memory:') this.retryBusy(() => this.db.pragma('journal_mode = WAL'))
      // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commit.
      this.db.pragma('synchronous = NORMAL')
      this.db.pragma('foreign_keys = ON')
      this.retryBusy(() => this.db.exec(SCHEMA))
    } catch (err) {
      this.db.close()
      if (err instanceof EdgeMqError) throw err
      throw new EdgeMqError(`the registry ${file} is not readable: ${(err as Error).message}`, {
        hint: 'the file may be corrupt or not an edgemq home; pass another --home',
      })
    }
  }

  private readonly statements = new Map<string, Database.Statement>()

  /** Prepared once per SQL text: preparing costs more than running these small queries. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql)
    if (!st) {
      st = this.db.prepare(sql)
      this.statements.set(sql, st)
    }
    return st
  }

  private retryBusy<T>(fn: () => T): T {
    for (let i = 0; ; i++) {
      try {
        return fn()
      } catch (err) {
        if (!isBusy(err) || i > 200) throw err
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10 + Math.random() * 40)
      }
    }
  }

  /** BEGIN IMMEDIATE takes the write lock up front, so read-modify-write never deadlocks. */
  private tx<T>(fn: () => T): T {
    // Counted before and after: data_version does not see this connection's own commits.
    this.ownWrites++
    try {
      return this.retryBusy(() => this.db.transaction(fn).immediate())
    } finally {
      this.ownWrites++
    }
  }

  /** Writes through this connection (data_version counts only the other connections'). */
  private ownWrites = 0

  private dataVersionStmt?: Database.Statement

  dataVersion(): string {
    this.dataVersionStmt ??= this.db.prepare('PRAGMA data_version').pluck()
    return `${this.dataVersionStmt.get() as number}.${this.ownWrites}`
  }

  private change(kind: ChangeKind, op: string, deviceId?: string, moduleId?: string): void {
    this.stmt('INSERT INTO changes (kind, device_id, module_id, op) VALUES (?, ?, ?, ?)').run(kind, deviceId ?? null, moduleId ?? null, op)
    if (++this.changeCount % 500 === 0) {
      this.stmt('DELETE FROM changes WHERE seq < (SELECT MAX(seq) FROM changes) - ?').run(CHANGE_FEED_KEEP)
    }
  }

  async getHub(): Promise<HubRecord | undefined> {
    const row = this.stmt('SELECT doc FROM hub WHERE id = 1').get() as Row | undefined
    return row ? (JSON.parse(row.doc) as HubRecord) : undefined
  }

  async initHub(hub: HubRecord, opts: { force?: boolean } = {}): Promise<boolean> {
    return this.tx(() => {
      const exists = this.stmt('SELECT 1 FROM hub WHERE id = 1').get() !== undefined
      if (exists && !opts.force) return false
      if (exists) {
        for (const t of ['devices', 'modules', 'twins', 'dps']) this.db.exec(`DELETE FROM ${t}`)
      }
      this.stmt('INSERT OR REPLACE INTO hub (id, doc) VALUES (1, ?)').run(JSON.stringify(hub))
      this.change('hub', exists ? 'replace' : 'create')
      return true
    })
  }

  async updateHub(mutate: (hub: HubRecord) => HubRecord): Promise<HubRecord> {
    return this.tx(() => {
      const row = this.stmt('SELECT doc FROM hub WHERE id = 1').get() as Row | undefined
      if (!row) throw new NotFoundError('no hub in this home', 'run `edgemq hub init`')
      const next = mutate(JSON.parse(row.doc) as HubRecord)
      this.stmt('UPDATE hub SET doc = ? WHERE id = 1').run(JSON.stringify(next))
      this.change('hub', 'update')
      return next
    })
  }

  async createDevice(device: DeviceRecord): Promise<void> {
    this.tx(() => {
      const r = this.stmt('INSERT OR IGNORE INTO devices (device_id, doc) VALUES (?, ?)').run(device.deviceId, JSON.stringify(device))
      if (r.changes === 0) throw new ConflictError(`device "${device.deviceId}" already exists`, 'pick another id, or `edgemq device show ' + device.deviceId + '`')
      this.stmt('INSERT OR REPLACE INTO twins (device_id, module_id, doc) VALUES (?, \'\', ?)').run(device.deviceId, JSON.stringify(emptyTwin()))
      this.change('device', 'create', device.deviceId)
    })
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const row = this.stmt('SELECT doc FROM devices WHERE device_id = ?').get(deviceId) as Row | undefined
    return row ? (JSON.parse(row.doc) as DeviceRecord) : undefined
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (this.stmt('SELECT doc FROM devices ORDER BY device_id').all() as Row[]).map((r) => JSON.parse(r.doc) as DeviceRecord)
  }

  async putDevice(device: DeviceRecord): Promise<void> {
    this.tx(() => {
      const r = this.stmt('UPDATE devices SET doc = ? WHERE device_id = ?').run(JSON.stringify(device), device.deviceId)
      if (r.changes === 0) throw new NotFoundError(`device "${device.deviceId}" not found`)
      this.change('device', 'update', device.deviceId)
    })
  }

  async deleteDevice(deviceId: string): Promise<boolean> {
    return this.tx(() => {
      const r = this.stmt('DELETE FROM devices WHERE device_id = ?').run(deviceId)
      if (r.changes === 0) return false
      this.stmt('DELETE FROM modules WHERE device_id = ?').run(deviceId)
      this.stmt('DELETE FROM twins WHERE device_id = ?').run(deviceId)
      this.change('device', 'delete', deviceId)
      return true
    })
  }

  async createModule(module: ModuleRecord): Promise<void> {
    this.tx(() => {
      if (!this.stmt('SELECT 1 FROM devices WHERE device_id = ?').get(module.deviceId)) {
        throw new NotFoundError(`device "${module.deviceId}" not found`, 'create it first with `edgemq device create ' + module.deviceId + '`')
      }
      const r = this.db
        .prepare('INSERT OR IGNORE INTO modules (device_id, module_id, doc) VALUES (?, ?, ?)')
        .run(module.deviceId, module.moduleId, JSON.stringify(module))
      if (r.changes === 0) throw new ConflictError(`module "${module.moduleId}" already exists on device "${module.deviceId}"`)
      this.stmt('INSERT OR REPLACE INTO twins (device_id, module_id, doc) VALUES (?, ?, ?)').run(module.deviceId, module.moduleId, JSON.stringify(emptyTwin()))
      this.change('module', 'create', module.deviceId, module.moduleId)
    })
  }

  async getModule(deviceId: string, moduleId: string): Promise<ModuleRecord | undefined> {
    const row = this.stmt('SELECT doc FROM modules WHERE device_id = ? AND module_id = ?').get(deviceId, moduleId) as Row | undefined
    return row ? (JSON.parse(row.doc) as ModuleRecord) : undefined
  }

  async listModules(deviceId: string): Promise<ModuleRecord[]> {
    return (this.stmt('SELECT doc FROM modules WHERE device_id = ? ORDER BY module_id').all(deviceId) as Row[]).map(
      (r) => JSON.parse(r.doc) as ModuleRecord,
    )
  }

  async putModule(module: ModuleRecord): Promise<void> {
    this.tx(() => {
      const r = this.stmt('UPDATE modules SET doc = ? WHERE device_id = ? AND module_id = ?').run(JSON.stringify(module), module.deviceId, module.moduleId)
      if (r.changes === 0) throw new NotFoundError(`module "${module.moduleId}" not found on device "${module.deviceId}"`)
      this.change('module', 'update', module.deviceId, module.moduleId)
    })
  }

  async deleteModule(deviceId: string, moduleId: string): Promise<boolean> {
    return this.tx(() => {
      const r = this.stmt('DELETE FROM modules WHERE device_id = ? AND module_id = ?').run(deviceId, moduleId)
      if (r.changes === 0) return false
      this.stmt('DELETE FROM twins WHERE device_id = ? AND module_id = ?').run(deviceId, moduleId)
      this.change('module', 'delete', deviceId, moduleId)
      return true
    })
  }

  async getTwin(key: TwinKey): Promise<TwinRecord | undefined> {
    const row = this.stmt('SELECT doc FROM twins WHERE device_id = ? AND module_id = ?').get(key.deviceId, key.moduleId ?? '') as Row | undefined
    return row ? (JSON.parse(row.doc) as TwinRecord) : undefined
  }

  async updateTwin(key: TwinKey, mutate: (twin: TwinRecord) => TwinRecord, op: string): Promise<TwinRecord> {
    return this.tx(() => {
      const row = this.stmt('SELECT doc FROM twins WHERE device_id = ? AND module_id = ?').get(key.deviceId, key.moduleId ?? '') as Row | undefined
      if (!row) {
        const what = key.moduleId ? `module "${key.moduleId}" on device "${key.deviceId}"` : `device "${key.deviceId}"`
        throw new NotFoundError(`${what} not found`)
      }
      const next = mutate(JSON.parse(row.doc) as TwinRecord)
      this.stmt('UPDATE twins SET doc = ? WHERE device_id = ? AND module_id = ?').run(JSON.stringify(next), key.deviceId, key.moduleId ?? '')
      this.change('twin', op, key.deviceId, key.moduleId)
      return next
    })
  }

  async getDpsDoc(kind: DpsDocKind, id: string): Promise<unknown> {
    const row = this.stmt('SELECT doc FROM dps WHERE kind = ? AND id = ?').get(kind, id) as Row | undefined
    return row ? (JSON.parse(row.doc) as unknown) : undefined
  }

  async listDpsDocs(kind: DpsDocKind): Promise<unknown[]> {
    return (this.stmt('SELECT doc FROM dps WHERE kind = ? ORDER BY id').all(kind) as Row[]).map((r) => JSON.parse(r.doc) as unknown)
  }

  async putDpsDoc(kind: DpsDocKind, id: string, doc: unknown): Promise<void> {
    this.tx(() => this.stmt('INSERT OR REPLACE INTO dps (kind, id, doc) VALUES (?, ?, ?)').run(kind, id, JSON.stringify(doc)))
  }

  async deleteDpsDoc(kind: DpsDocKind, id: string): Promise<boolean> {
    return this.tx(() => this.stmt('DELETE FROM dps WHERE kind = ? AND id = ?').run(kind, id).changes > 0)
  }

  async changesSince(seq: number): Promise<Change[]> {
    const rows = this.stmt('SELECT seq, kind, device_id, module_id, op FROM changes WHERE seq > ? ORDER BY seq LIMIT 5000').all(seq) as {
      seq: number
      kind: ChangeKind
      device_id: string | null
      module_id: string | null
      op: string
    }[]
    return rows.map((r) => ({
      seq: r.seq,
      kind: r.kind,
      op: r.op,
      ...(r.device_id ? { deviceId: r.device_id } : {}),
      ...(r.module_id ? { moduleId: r.module_id } : {}),
    }))
  }

  async lastChangeSeq(): Promise<number> {
    const row = this.stmt('SELECT MAX(seq) AS s FROM changes').get() as { s: number | null }
    return row.s ?? 0
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}
