// src/util: the atomic write, pidAlive, findUp, batchedDefer and the listen helper's port-error hints.
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'

import { EdgeMqError } from '../../src/errors.js'
import { findUp, pidAlive, writeFileAtomicSync } from '../../src/util/fs.js'
import { batchedDefer } from '../../src/util/defer.js'
import { listenWithHints } from '../../src/util/listen.js'
import { tempHome } from '../helpers/cli.js'

test('writeFileAtomicSync writes the exact mode, replaces the old content, and leaves no temp file', () => {
  const dir = tempHome()
  const file = join(dir, 'secret.json')
  writeFileAtomicSync(file, 'one', 0o600)
  writeFileAtomicSync(file, Buffer.from('two'), 0o600)
  assert.equal(readFileSync(file, 'utf8'), 'two')
  assert.equal(statSync(file).mode & 0o777, 0o600)
  assert.deepEqual(readdirSync(dir), ['secret.json'])
})

test('pidAlive: this process is alive, a pid above pid_max is not', () => {
  assert.equal(pidAlive(process.pid), true)
  assert.equal(pidAlive(2 ** 30), false)
})

test('listenWithHints: the bound port for port 0; EADDRINUSE → a one-line EdgeMqError naming the port and flag', async (t) => {
  const a = createServer()
  const port = await listenWithHints(a, 0, { host: '127.0.0.1', what: 'mqtt', flag: '--port' })
  t.after(() => a.close())
  assert.equal(port, (a.address() as AddressInfo).port)
  const b = createServer()
  const err = await listenWithHints(b, port, { host: '127.0.0.1', what: 'mqtt', flag: '--port' }).catch((e: unknown) => e)
  assert.ok(err instanceof EdgeMqError)
  assert.equal(err.message, `port ${port} (mqtt) is already in use`)
  assert.match(err.hint ?? '', /--port \(0 = a free one\)/)
})

test('findUp: the nearest directory holding the name, from the start directory upwards; undefined when none does', () => {
  const home = tempHome()
  const deep = join(home, 'a', 'b', 'c')
  mkdirSync(join(deep, 'bin'), { recursive: true })
  writeFileSync(join(home, 'marker'), '')
  writeFileSync(join(home, 'a', 'marker'), '')
  writeFileSync(join(deep, 'bin', 'run.js'), '')
  assert.equal(findUp(deep, 'marker'), join(home, 'a'))
  assert.equal(findUp(deep, join('bin', 'run.js')), deep)
  assert.equal(findUp(home, join('a', 'b', 'c', 'bin', 'run.js')), home)
  assert.equal(findUp(deep, 'no-such-file-anywhere-above'), undefined)
})

test('batchedDefer: one schedule call per batch, callbacks in order, callbacks added while a batch runs go to the next one', async () => {
  let schedules = 0
  const defer = batchedDefer((run) => {
    schedules++
    setImmediate(run)
  })
  const seen: string[] = []
  const nextBatch = new Promise<void>((resolve) => {
    defer(() => seen.push('a'))
    defer(() => {
      seen.push('b')
      defer(() => {
        seen.push('d')
        resolve()
      })
    })
    defer(() => seen.push('c'))
  })
  await nextBatch
  assert.deepEqual(seen, ['a', 'b', 'c', 'd'])
  assert.equal(schedules, 2)
})
