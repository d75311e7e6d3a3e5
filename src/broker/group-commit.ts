/**
 * Group commit for the broker's LevelDB (issue 16): aedes-persistence-level writes one `put` per
 * message and per state change (enqueue, in-flight update, clear on PUBACK), each its own LevelDB
 * write. This wrapper gathers every write made within one tick, and every write made while the
 * previous batch is still being written, into one `batch()`. Each caller's promise still resolves
 * only once its own write reached the OS (the same guarantee a single `put` gives), so nothing
 * acknowledged after that is lost on `kill -9`. Reads see writes that are not yet committed.
 *
 * It offers the subset of the abstract-level API aedes-persistence-level 9.x calls: get, put, del,
 * batch (array and chained), clear, values, close.
 */
import type { ClassicLevel } from 'classic-level'

type Op = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string }

interface Range {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
}

interface Waiter {
  resolve(): void
  reject(err: Error): void
}

/** Writes not yet committed, oldest first: a batch (key → value, null = deleted) or a range clear. */
type Pending = { kind: 'batch'; ops: Op[]; overlay: Map<string, Buffer | null>; waiters: Waiter[] } | { kind: 'clear'; range: Range }

const BUFFER = { valueEncoding: 'buffer' } as const

function inRange(key: string, r: Range): boolean {
  if (r.gt !== undefined && !(key > r.gt)) return false
  if (r.gte !== undefined && !(key >= r.gte)) return false
  if (r.lt !== undefined && !(key < r.lt)) return false
  if (r.lte !== undefined && !(key <= r.lte)) return false
  return true
}

export interface ChainedBatch {
  put(key: string, value: Buffer): ChainedBatch
  del(key: string): ChainedBatch
  write(): Promise<void>
}

export class GroupCommitLevel {
  /** Uncommitted writes, oldest first (reads consult them newest first). */
  private readonly pending: Pending[] = []
  /** The batch new writes join; closed once it starts being written. */
  private open?: Extract<Pending, { kind: 'batch' }>
  /** Every write job, in order: at most one LevelDB write in flight. */
  private tail: Promise<void> = Promise.resolve()

  constructor(private readonly db: ClassicLevel<string, Buffer>) {}

  async get(key: string, _opts?: unknown): Promise<Buffer | undefined> {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i]
      if (p.kind === 'clear') {
        if (inRange(key, p.range)) return undefined
      } else if (p.overlay.has(key)) {
        return p.overlay.get(key) ?? undefined
      }
    }
    return this.db.get(key, BUFFER)
  }

  put(key: string, value: Buffer, _opts?: unknown): Promise<void> {
    return this.write([{ type: 'put', key, value }])
  }

  del(key: string): Promise<void> {
    return this.write([{ type: 'del', key }])
  }

  batch(): ChainedBatch
  batch(ops: Op[], opts?: unknown): Promise<void>
  batch(ops?: Op[]): ChainedBatch | Promise<void> {
    if (ops) return this.write(ops)
    const list: Op[] = []
    const chained: ChainedBatch = {
      put: (key, value) => (list.push({ type: 'put', key, value }), chained),
      del: (key) => (list.push({ type: 'del', key }), chained),
      write: () => this.write(list),
    }
    return chained
  }

  /** A range delete, ordered after every write before it and before every write after it. */
  clear(range: Range): Promise<void> {
    this.open = undefined
    const p: Pending = { kind: 'clear', range }
    this.pending.push(p)
    return this.enqueue(() => this.db.clear(range)).finally(() => this.settle(p))
  }

  /** Iterates committed data once every write issued before this call is committed. */
  async *values(opts: Range & { valueEncoding?: string }): AsyncGenerator<Buffer> {
    await this.tail
    for await (const v of this.db.values({ ...opts, ...BUFFER })) yield v
  }

  async close(): Promise<void> {
    await this.tail
    await this.db.close()
  }

  private write(ops: Op[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve()
    let b = this.open
    if (!b) {
      const batch: Extract<Pending, { kind: 'batch' }> = { kind: 'batch', ops: [], overlay: new Map(), waiters: [] }
      this.open = b = batch
      this.pending.push(batch)
      // Wait one turn of the event loop so the writes of this tick join; a batch queued behind
      // one in flight keeps collecting until that one is committed.
      void this.enqueue(async () => {
        await new Promise<void>((r) => setImmediate(r))
        if (this.open === batch) this.open = undefined
        try {
          await this.db.batch(batch.ops, BUFFER)
          for (const w of batch.waiters) w.resolve()
        } catch (err) {
          for (const w of batch.waiters) w.reject(err as Error)
        } finally {
          this.settle(batch)
        }
      })
    }
    for (const op of ops) {
      b.ops.push(op)
      b.overlay.set(op.key, op.type === 'put' ? op.value : null)
    }
    const batch = b
    return new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }))
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.tail.then(job)
    this.tail = run.catch(() => undefined)
    return run
  }

  private settle(p: Pending): void {
    const i = this.pending.indexOf(p)
    if (i >= 0) this.pending.splice(i, 1)
  }
}
