/**
 * Issue 17: the README is executable. Every shell block marked `<!-- readme-test -->` runs (side by
 * side: they share nothing) as one `bash -euo pipefail` script with `edgemq` on PATH (the built bin/run.js), a fresh
 * EDGEMQ_HOME and a fresh working directory whose examples/ is the repository's; it must exit 0 and
 * print the text after each `# → ` comment. How blocks are marked is documented in the README
 * ("Development").
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { BIN, REPO_ROOT, tempHome } from '../helpers/cli.js'

export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  line: number
  script: string
  /** The text after each `# → ` comment: the block's output must contain each. */
  expect: string[]
}

const MARKER = '<!-- readme-test -->'

/** The marked shell blocks of `markdown`, in order. A marker not followed by a bash/sh fence is an error. */
export function markedBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n')
  const blocks: ReadmeBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== MARKER) continue
    const fence = lines[i + 1] ?? ''
    if (!/^```(bash|sh)\s*$/.test(fence)) throw new Error(`README line ${i + 1}: ${MARKER} must be followed by a \`\`\`bash or \`\`\`sh fence, found "${fence}"`)
    const end = lines.findIndex((l, j) => j > i + 1 && /^```\s*$/.test(l))
    if (end < 0) throw new Error(`README line ${i + 2}: the block never closes`)
    const body = lines.slice(i + 2, end)
    const expect = body.flatMap((l) => [...l.matchAll(/#\s*→\s*(.+)$/g)].map((m) => m[1].trim()))
    blocks.push({ line: i + 2, script: body.join('\n'), expect })
    i = end
  }
  return blocks
}

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')

test('the marker parser: blocks in order, expectations from `# → ` comments, a stray marker is refused', () => {
  const md = ['x', MARKER, '```bash', 'echo hi   # → hi', 'echo b', '```', 'text', '```bash', 'not marked', '```', MARKER, '```sh', 'true', '```'].join('\n')
  assert.deepEqual(markedBlocks(md), [
    { line: 3, script: 'echo hi   # → hi\necho b', expect: ['hi'] },
    { line: 12, script: 'true', expect: [] },
  ])
  assert.throws(() => markedBlocks(`${MARKER}\n\n\`\`\`bash\ntrue\n\`\`\``), /must be followed by a ```bash or ```sh fence/)
})

const blocks = markedBlocks(README)

test('the README marks at least the scripting and the az/query walkthroughs', () => {
  assert.ok(blocks.length >= 2, `found ${blocks.length} marked blocks`)
  assert.ok(blocks.some((b) => b.script.includes('mosquitto_sub')), 'a marked block drives the real mosquitto tools')
  assert.ok(blocks.some((b) => b.script.includes('hub query')), 'a marked block runs a query')
})

/** A directory with an `edgemq` on PATH that runs this checkout's built CLI. */
function binDir(): string {
  const dir = join(tempHome('edgemq-readme-bin-'), 'bin')
  mkdirSync(dir)
  const shim = join(dir, 'edgemq')
  writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`)
  chmodSync(shim, 0o755)
  return dir
}

const BIN_DIR = binDir()

// Blocks share nothing (each its own home and directory), so they run side by side.
describe('marked README blocks', { concurrency: true }, () => {
  for (const block of blocks) {
    test(`README block at line ${block.line} runs`, async () => {
      const cwd = tempHome('edgemq-readme-cwd-')
      symlinkSync(join(REPO_ROOT, 'examples'), join(cwd, 'examples'))
      const home = tempHome('edgemq-readme-home-')
      const child = spawn('bash', ['-euo', 'pipefail', '-c', block.script], {
        cwd,
        env: { ...process.env, PATH: `${BIN_DIR}:${process.env.PATH ?? ''}`, EDGEMQ_HOME: home, NO_COLOR: '1', NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
      // Generous: a block is ~10 CLI start-ups, each seconds long on a loaded machine; below the runner's 120 s per test.
      const timer = setTimeout(() => child.kill('SIGKILL'), 110_000)
      const [code] = (await once(child, 'exit')) as [number | null]
      clearTimeout(timer)
      const report = `README line ${block.line}:\n--- stdout\n${stdout}\n--- stderr\n${stderr}`
      assert.equal(code, 0, report)
      for (const want of block.expect) assert.ok(stdout.includes(want), `output has "${want}"\n${report}`)
    })
  }
})
