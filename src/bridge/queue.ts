/**
 * The store-and-forward queue (PROTOCOL.md §5–§6): messages bound for `$upstream` are kept
 * here, in order, until the parent acknowledges them or they outlive
 * `storeAndForwardConfiguration.timeToLiveSecs`. SQLite (WAL) in `<home>/forward.db`: an insert
 * is durable before the local PUBACK goes out, and `kill -9` of the broker loses nothing.
 * In-memory hubs get `:memory:`.
 */
import Database from 'better-sqlite3'

import { restrictSqliteFiles } from '../util/fs.js'

export interface QueuedMessage {
  seq: number
  topic: string
  payload: Buffer
  qos: 0 | 1
  retain: boolean
  enqueuedAt: number
}

export class ForwardQueue {
  private readonly db: Database.Database
  private readonly insertStmt: Database.Statement
  private readonly headStmt: Database.Statement
  private readonly deleteStmt: Database.Statement
  private readonly expireStmt: Database.Statement
  private readonly countStmt: Database.Statement
  /** Messages dropped because they outlived the TTL, since start. */
  expired = 0
  /** Oldest messages dropped because the queue was full (PROTOCOL.md §6: bounded), since start. */
  dropped = 0
  private count: number
  private readonly dropOldestStmt: Database.Statement

  /** `maxLength` bounds the queue; when full, the oldest message makes room (like drop_old). */
  constructor(
    file: string,
    private readonly maxLength = 1_000_000,
  ) {
    // Queued messages are device data: owner-only, like the registry.
    restrictSqliteFiles(file)
    this.db = new Database(file, { timeout: 10_000 })
    if (file !== ':memory:') this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    restrictSqliteFiles(file) // an older -wal/-shm made 0644 by an earlier edgemq
    this.db.exec('CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, enqueued_at INTEGER NOT NULL)')
    this.insertStmt = this.db.prepare('INSERT INTO queue (topic, payload, qos, retain, enqueued_at) VALUES (?, ?, ?, ?, ?)')
    this.headStmt = this.db.prepare('SELECT seq, topic, payload, qos, retain, enqueued_at AS enqueuedAt FROM queue WHERE seq > ? ORDER BY seq LIMIT ?')
    this.deleteStmt = this.db.prepare('DELETE FROM queue WHERE seq = ?')
    // The TTL sweep is an index range, not a table scan (it runs while draining).
    this.db.exec('CREATE INDEX IF NOT EXISTS queue_enqueued_at ON queue (enqueued_at)')
    this.expireStmt = this.db.prepare('DELETE FROM queue WHERE enqueued_at < ? AND seq > ?')
    this.countStmt = this.db.prepare('SELECT COUNT(*) AS n FROM queue')
    this.dropOldestStmt = this.db.prepare('DELETE FROM queue WHERE seq = (SELECT MIN(seq) FROM queue)')
    this.count = (this.countStmt.get() as { n: number }).n
  }

  push(topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, now = Date.now()): number {
    const seq = Number(this.insertStmt.run(topic, payload, qos, retain ? 1 : 0, now).lastInsertRowid)
    this.count++
    while (this.count > this.maxLength) {
      this.count -= this.dropOldestStmt.run().changes
      this.dropped++
    }
    return seq
  }

  /** Up to `limit` messages after `afterSeq`, oldest first. */
  peek(afterSeq: number, limit: number): QueuedMessage[] {
    return (this.headStmt.all(afterSeq, limit) as (Omit<QueuedMessage, 'retain'> & { retain: number })[]).map((r) => ({ ...r, qos: r.qos as 0 | 1, retain: r.retain === 1 }))
  }

  ack(seq: number): void {
    this.count -= this.deleteStmt.run(seq).changes
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

  close(): void {
    if (this.db.open) this.db.close()
  }
}
