/**
 * The store-and-forward queue (PROTOCOL.md §5–§6): messages bound for `$upstream` are kept
 * here, in order, until the parent acknowledges them or they outlive
 * `storeAndForwardConfiguration.timeToLiveSecs`. SQLite (WAL) in `<home>/forward.db`: an insert
 * is durable before the local PUBACK goes out, and `kill -9` of the broker loses nothing.
 * In-memory hubs get `:memory:`.
 *
 * The same database holds the dead-letter store: messages the parent refused (see bridge.ts),
 * moved out of the queue so that the queue moves on, kept until `bridge dead-letters retry`
 * puts them back (at the tail) or `purge` deletes them.
 */
import Database from 'better-sqlite3'

import { restrictSqliteFiles } from '../util/fs.js'
/** Where a queued message came from: an `out` bridge rule (re-checked when the rules change) or a route INTO $upstream. */
export type QueueOrigin = 'out' | 'route'

export interface QueuedMessage {
  seq: number
  /** The remote topic it is published to. */
  topic: string
  payload: Buffer
  qos: 0 | 1
  retain: boolean
  enqueuedAt: number
  /** The local topic an `out` rule mapped (undefined for routed telemetry and rows of older versions). */
  localTopic?: string
  /** Undefined for rows written by an edgemq before dead-lettering. */
  origin?: QueueOrigin
  /** Failed deliveries so far (see UpstreamBridge). */
  attempts: number
}

export interface DeadLetterRow {
  id: number
  topic: string
  payload: Buffer
  qos: 0 | 1
  retain: boolean
  enqueuedAt: number
  deadAt: number
  attempts: number
  reason: string
  localTopic?: string
  origin?: QueueOrigin
}

/** What re-checking a queued message against the current rules decided. */
export type Recheck = { keep: true; topic?: string } | { keep: false }

type Row = Omit<QueuedMessage, 'retain' | 'localTopic' | 'origin'> & { retain: number; localTopic: string | null; origin: QueueOrigin | null }
type DeadRow = Omit<DeadLetterRow, 'retain' | 'localTopic' | 'origin'> & { retain: number; localTopic: string | null; origin: QueueOrigin | null }

const COLUMNS = 'topic, payload, qos, retain, enqueued_at, local_topic, origin'

/** The columns the queue and the dead-letter table share, decoded from their SQLite forms. */
function sharedFields(r: Row | DeadRow) {
  return {
    topic: r.topic,
    payload: r.payload,
    qos: r.qos as 0 | 1,
    retain: r.retain === 1,
    enqueuedAt: r.enqueuedAt,
    attempts: r.attempts,
    ...(r.localTopic !== null ? { localTopic: r.localTopic } : {}),
    ...(r.origin !== null ? { origin: r.origin } : {}),
  }
}

const toMessage = (r: Row): QueuedMessage => ({ seq: r.seq, ...sharedFields(r) })

const toDead = (r: DeadRow): DeadLetterRow => ({ id: r.id, deadAt: r.deadAt, reason: r.reason, ...sharedFields(r) })

export class ForwardQueue {
  private readonly db: Database.Database
  private readonly insertStmt: Database.Statement
  private readonly headStmt: Database.Statement
  private readonly deleteStmt: Database.Statement
  private readonly expireStmt: Database.Statement
  private readonly countStmt: Database.Statement
  private readonly failStmt: Database.Statement
  private readonly deadCountStmt: Database.Statement
  /** Messages dropped because they outlived the TTL, since start. */
  expired = 0
  /** Oldest messages dropped because the queue was full (PROTOCOL.md §6: bounded), since start. */
  dropped = 0
  /** Queued messages no `out` rule covers any more after a config change, dropped since start. */
  droppedNoRule = 0
  /** Oldest dead letters dropped because the dead-letter store was full, since start. */
  deadDropped = 0
  private count: number
  private deadCount: number
  private readonly dropOldestStmt: Database.Statement

  /**
   * `maxLength` bounds the queue; when full, the oldest message makes room (like drop_old).
   * `maxDead` bounds the dead-letter store the same way.
   */
  constructor(
    file: string,
    private readonly maxLength = 1_000_000,
    private readonly maxDead = 100_000,
  ) {
    // Queued messages are device data: owner-only, like the registry.
    restrictSqliteFiles(file)
    this.db = new Database(file, { timeout: 10_000 })
    if (file !== ':memory:') this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    restrictSqliteFiles(file) // an older -wal/-shm made 0644 by an earlier edgemq
    this.db.exec('CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, enqueued_at INTEGER NOT NULL)')
    // Columns added with dead-lettering (issue 21): a forward.db of an earlier version is migrated in place.
    const have = new Set((this.db.prepare('PRAGMA table_info(queue)').all() as { name: string }[]).map((c) => c.name))
    if (!have.has('local_topic')) this.db.exec('ALTER TABLE queue ADD COLUMN local_topic TEXT')
    if (!have.has('origin')) this.db.exec('ALTER TABLE queue ADD COLUMN origin TEXT')
    if (!have.has('attempts')) this.db.exec('ALTER TABLE queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0')
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, enqueued_at INTEGER NOT NULL, local_topic TEXT, origin TEXT, attempts INTEGER NOT NULL, reason TEXT NOT NULL, dead_at INTEGER NOT NULL)',
    )
    this.db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
    this.insertStmt = this.db.prepare(`INSERT INTO queue (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`)
    this.headStmt = this.db.prepare('SELECT seq, topic, payload, qos, retain, enqueued_at AS enqueuedAt, local_topic AS localTopic, origin, attempts FROM queue WHERE seq > ? ORDER BY seq LIMIT ?')
    this.deleteStmt = this.db.prepare('DELETE FROM queue WHERE seq = ?')
    // The TTL sweep is an index range, not a table scan (it runs while draining).
    this.db.exec('CREATE INDEX IF NOT EXISTS queue_enqueued_at ON queue (enqueued_at)')
    this.expireStmt = this.db.prepare('DELETE FROM queue WHERE enqueued_at < ? AND seq > ?')
    this.countStmt = this.db.prepare('SELECT COUNT(*) AS n FROM queue')
    this.dropOldestStmt = this.db.prepare('DELETE FROM queue WHERE seq = (SELECT MIN(seq) FROM queue)')
    this.failStmt = this.db.prepare('UPDATE queue SET attempts = attempts + 1 WHERE seq = ? RETURNING attempts')
    this.deadCountStmt = this.db.prepare('SELECT COUNT(*) AS n FROM dead_letters')
    this.count = (this.countStmt.get() as { n: number }).n
    this.deadCount = (this.deadCountStmt.get() as { n: number }).n
  }

  push(topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, now = Date.now(), from: { origin?: QueueOrigin; localTopic?: string } = {}): number {
    const seq = Number(this.insertStmt.run(topic, payload, qos, retain ? 1 : 0, now, from.localTopic ?? null, from.origin ?? null).lastInsertRowid)
    this.count++
    while (this.count > this.maxLength) {
      this.count -= this.dropOldestStmt.run().changes
      this.dropped++
    }
    return seq
  }

  /** Up to `limit` messages after `afterSeq`, oldest first. */
  peek(afterSeq: number, limit: number): QueuedMessage[] {
    return (this.headStmt.all(afterSeq, limit) as Row[]).map(toMessage)
  }

  ack(seq: number): void {
    this.count -= this.deleteStmt.run(seq).changes
  }

  /** Counts a failed delivery of `seq`; returns its attempts so far (0: the message is gone). */
  recordFailure(seq: number): number {
    const r = this.failStmt.get(seq) as { attempts: number } | undefined
    return r?.attempts ?? 0
  }

  /** Drops messages older than `ttlSecs` (only those after `afterSeq`: not yet in flight); returns how many. */
  expire(ttlSecs: number, now = Date.now(), afterSeq = 0): number {
    const n = this.expireStmt.run(now - ttlSecs * 1000, afterSeq).changes
    this.expired += n
    this.count -= n
    return n
  }

  get length(): number {
    return this.count
  }

  /** A small value kept with the queue (e.g. the remote filters the bridge last subscribed to). */
  getMeta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  // ---- re-checking what is queued when the rules change ----

  /**
   * Re-checks every queued message against the rules named by `fingerprint`, unless this store
   * was last checked against the same rules (so a restart with an unchanged config scans nothing).
   * `decide` keeps a message (optionally under a new remote topic) or drops it (counted in
   * `droppedNoRule`). Returns how many were dropped and re-mapped, or undefined when nothing changed.
   */
  recheck(fingerprint: string, decide: (m: QueuedMessage) => Recheck): { dropped: number; remapped: number } | undefined {
    if (this.getMeta('rules') === fingerprint) return undefined
    const drop: number[] = []
    const remap: [string, number][] = []
    // Collected first (a statement may not write while another iterates), applied in one transaction.
    const scan = this.db.prepare('SELECT seq, topic, local_topic AS localTopic, origin FROM queue ORDER BY seq')
    for (const r of scan.iterate() as Iterable<Row>) {
      const v = decide(toMessage({ ...r, payload: Buffer.alloc(0), qos: 0, retain: 0, enqueuedAt: 0, attempts: 0 }))
      if (!v.keep) drop.push(r.seq)
      else if (v.topic !== undefined && v.topic !== r.topic) remap.push([v.topic, r.seq])
    }
    const update = this.db.prepare('UPDATE queue SET topic = ? WHERE seq = ?')
    let dropped = 0
    this.db.transaction(() => {
      for (const seq of drop) dropped += this.deleteStmt.run(seq).changes
      for (const [topic, seq] of remap) update.run(topic, seq)
      this.setMeta('rules', fingerprint)
    })()
    this.count -= dropped
    this.droppedNoRule += dropped
    return { dropped, remapped: remap.length }
  }

  // ---- the dead-letter store ----

  /** Moves `seq` from the queue to the dead-letter store; false when it was no longer queued. */
  deadLetter(seq: number, reason: string, now = Date.now()): boolean {
    const moved = this.db.transaction(() => {
      const r = this.db
        .prepare(`INSERT INTO dead_letters (${COLUMNS}, attempts, reason, dead_at) SELECT ${COLUMNS}, attempts, ?, ? FROM queue WHERE seq = ?`)
        .run(reason, now, seq)
      if (r.changes === 0) return false
      this.deleteStmt.run(seq)
      return true
    })()
    if (!moved) return false
    this.count--
    this.deadCount++
    while (this.deadCount > this.maxDead) {
      this.deadCount -= this.db.prepare('DELETE FROM dead_letters WHERE id = (SELECT MIN(id) FROM dead_letters)').run().changes
      this.deadDropped++
    }
    return true
  }

  get deadLettered(): number {
    return this.deadCount
  }

  /** Dead letters, oldest first: `limit` after id `afterId`, optionally only those with `ids`. */
  listDead(opts: { limit?: number; afterId?: number; ids?: readonly number[] } = {}): DeadLetterRow[] {
    const select = 'SELECT id, topic, payload, qos, retain, enqueued_at AS enqueuedAt, local_topic AS localTopic, origin, attempts, reason, dead_at AS deadAt FROM dead_letters'
    if (opts.ids) {
      if (opts.ids.length === 0) return []
      const one = this.db.prepare(`${select} WHERE id = ?`)
      return opts.ids.map((id) => one.get(id) as DeadRow | undefined).filter((r): r is DeadRow => r !== undefined).sort((a, b) => a.id - b.id).map(toDead)
    }
    return (this.db.prepare(`${select} WHERE id > ? ORDER BY id LIMIT ?`).all(opts.afterId ?? 0, opts.limit ?? -1) as DeadRow[]).map(toDead)
  }

  /**
   * Puts dead letters back at the tail of the queue (all, or those in `ids`), oldest first, with
   * their attempts reset; returns the ids that were re-queued.
   */
  retryDead(ids?: readonly number[], now = Date.now()): number[] {
    // enqueued_at restarts: the TTL counts from the retry, or an old dead letter would expire at once.
    const move = this.db.prepare(
      `INSERT INTO queue (${COLUMNS}) SELECT topic, payload, qos, retain, ?, local_topic, origin FROM dead_letters WHERE id = ?`,
    )
    const del = this.db.prepare('DELETE FROM dead_letters WHERE id = ?')
    const done: number[] = []
    this.db.transaction(() => {
      const wanted = ids ? [...new Set(ids)].sort((a, b) => a - b) : (this.db.prepare('SELECT id FROM dead_letters ORDER BY id').pluck().all() as number[])
      for (const id of wanted) {
        if (move.run(now, id).changes === 0) continue
        del.run(id)
        done.push(id)
      }
    })()
    this.count += done.length
    this.deadCount -= done.length
    while (this.count > this.maxLength) {
      this.count -= this.dropOldestStmt.run().changes
      this.dropped++
    }
    return done
  }

  /** Deletes dead letters (all, or those in `ids`); returns how many. */
  purgeDead(ids?: readonly number[]): number {
    let n = 0
    if (!ids) n = this.db.prepare('DELETE FROM dead_letters').run().changes
    else {
      const del = this.db.prepare('DELETE FROM dead_letters WHERE id = ?')
      this.db.transaction(() => {
        for (const id of ids) n += del.run(id).changes
      })()
    }
    this.deadCount -= n
    return n
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}
