/**
 * Small filesystem helpers for the PKI: atomic writes and a cross-process lock.
 * Several edgemq processes share one home (a broker plus CLI commands), so every write must be
 * all-or-nothing and key material must never be readable by other users, not even briefly.
 */
import { randomBytes } from 'node:crypto'
import { open, rename, rm, stat, unlink, readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Unique sibling name for temp files/dirs: same filesystem, so `rename` is atomic. */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)
}

/**
 * Write via temp file + fsync + rename. The temp file is created with the final `mode`
 * (O_EXCL, so it can never be a pre-existing file with looser permissions).
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = tempSibling(path)
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.chmod(mode) // umask may have stripped bits we asked for; make the mode exact
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dirname(path))
}

/** Persist a rename across power loss. Best effort: not every platform can fsync a directory. */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
  } catch {
    /* unsupported (e.g. Windows) — the rename itself is still atomic */
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' // exists, just not ours
  }
}

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
