/**
 * The one log waiter: lines of a child's output, and waits for a line matching a pattern that
 * was logged at or after a mark. A wait that times out rejects (with everything logged so far).
 *
 *   const since = broker.mark()
 *   trigger()
 *   await broker.waitForLog(/bridge connected/, { since })   // never a line logged before `since`
 */
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'

export interface WaitForLogOptions {
  /** Only lines logged at or after this mark (from `mark()`) match; default 0, every line. */
  since?: number
  /** Default 10 s. */
  timeoutMs?: number
}

export class LineLog {
  readonly lines: string[] = []
  private readonly waiters = new Set<{ re: RegExp; resolve: (l: string) => void; reject: (why: string) => void }>()
  private ended: string | undefined

  constructor(private readonly name: string) {}

  /** Reads `stream` line by line into this log. */
  follow(stream: Readable): this {
    createInterface({ input: stream }).on('line', (line) => this.push(line))
    return this
  }

  push(line: string): void {
    this.lines.push(line)
    for (const w of [...this.waiters]) {
      if (w.re.test(line)) {
        this.waiters.delete(w)
        w.resolve(line)
      }
    }
  }

  /** Marks "now": a later `waitFor(…, { since })` ignores every line logged before it. */
  mark(): number {
    return this.lines.length
  }

  text(): string {
    return this.lines.map((l) => l + '\n').join('')
  }

  /** The process is gone: pending and later waits fail at once instead of after their timeout. */
  end(why: string): void {
    this.ended = why
    for (const w of [...this.waiters]) w.reject(why)
    this.waiters.clear()
  }

  waitFor(re: RegExp, opts: WaitForLogOptions = {}): Promise<string> {
    const since = opts.since ?? 0
    const timeoutMs = opts.timeoutMs ?? 10_000
    const hit = this.lines.slice(since).find((l) => re.test(l))
    if (hit !== undefined) return Promise.resolve(hit)
    const fail = (why: string) => new Error(`${this.name}: no line matched ${re} ${why}:\n${this.text()}`)
    if (this.ended !== undefined) return Promise.reject(fail(`(${this.ended})`))
    return new Promise((resolve, reject) => {
      const w = {
        re,
        resolve: (l: string) => (clearTimeout(timer), resolve(l)),
        reject: (why: string) => (clearTimeout(timer), reject(fail(`(${why})`))),
      }
      const timer = setTimeout(() => {
        this.waiters.delete(w)
        reject(fail(`within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.add(w)
    })
  }
}
