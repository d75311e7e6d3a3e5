/**
 * The filesystem helpers of every edgemq module: atomic writes, a cross-process lock, and
 * whether a pid is alive. Several edgemq processes share one home (a broker plus CLI commands),
 * so every write must be all-or-nothing and secrets (keys, tokens, the Redis URL) must never be
 * readable by other users, not even briefly.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { open, stat, unlink, readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** The nearest directory at or above `from` that holds `name` (a file or a relative path), or undefined. */
export function findUp(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, name))) return dir
    if (dirname(dir) === dir) return undefined
  }
}

/** Unique sibling name for temp files/dirs: same filesystem, so `rename` is atomic. */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)
}

/**
 * Write via temp file + fsync + rename + fsync of the directory: after it returns, the file has
 * either its old or its new content, also across a crash or power loss. The temp file is created
 * with the final `mode` (O_EXCL, so it can never be a pre-existing file with looser permissions).
 */
export function writeFileAtomicSync(path: string, data: string | Buffer, mode: number): void {
  const tmp = tempSibling(path)
  const fd = openSync(tmp, 'wx', mode)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    if (process.platform !== 'win32') chmodSync(tmp, mode) // umask may have stripped bits we asked for; make the mode exact
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
  fsyncDirSync(dirname(path))
}

/** Persist a rename across power loss. Best effort: not every platform can fsync a directory. */
export function fsyncDirSync(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    /* unsupported (e.g. Windows) — the rename itself is still atomic */
  }
}

/** Whether process `pid` exists (EPERM: it does, it just belongs to another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Run `fn` while holding an O_EXCL lock file. A lock whose owner process is gone, or that is older
 * than `staleMs` (a hung or crashed owner on another PID namespace), is broken — a crash must
 * never wedge the home directory.
 */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, opts: { timeoutMs?: number; staleMs?: number } = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000
  const staleMs = opts.staleMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      const fh = await open(lockPath, 'wx', 0o600)
      try {
        await fh.writeFile(String(process.pid))
      } finally {
        await fh.close()
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const staleIno = await staleLockInode(lockPath, staleMs)
    if (staleIno !== undefined) {
      // Only remove the very file we judged stale: another waiter may already have broken it and
      // taken a fresh lock under the same name (tiny stat→unlink window remains; acceptable here).
      const now = await stat(lockPath).catch(() => undefined)
      if (now?.ino === staleIno) await unlink(lockPath).catch(() => undefined)
      continue
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lockPath}`)
    await sleep(delay)
  }
  try {
    return await fn()
  } finally {
    await unlink(lockPath).catch(() => undefined)
  }
}

/** The lock file's inode if its owner is dead or it is too old, else undefined. */
async function staleLockInode(lockPath: string, staleMs: number): Promise<number | undefined> {
  try {
    const [st, text] = await Promise.all([stat(lockPath), readFile(lockPath, 'utf8')])
    const pid = Number.parseInt(text, 10)
    // An empty file is an owner between open() and write(): judge it by age only.
    const dead = Number.isInteger(pid) && pid > 0 && !pidAlive(pid)
    return dead || Date.now() - st.mtimeMs > staleMs ? st.ino : undefined
  } catch {
    return undefined // vanished meanwhile: just retry
  }
}

/**
 * A SQLite database owner-only: created 0600 before SQLite opens it (its -wal and -shm then take
 * the same mode from it), and any existing file, -wal or -shm tightened to 0600.
 */
export function restrictSqliteFiles(file: string): void {
  if (file === ':memory:' || process.platform === 'win32') return
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600))
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(f, 0o600)
    } catch {
      /* absent (no WAL yet) or not ours (shared home): keep going */
    }
  }
}
