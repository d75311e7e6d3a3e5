/**
 * Bad input → one clear `error:` sentence on stderr, the PRODUCT.md exit code, no stack trace
 * (PRODUCT.md "Commands": "never a stack trace unless --log-level debug").
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'

import { runCli, tempHome, type CliResult } from '../helpers/cli.js'

/** Asserts the failure shape and returns the error sentence. */
function failed(r: CliResult, code: number, pattern: RegExp): string {
  assert.equal(r.code, code, `exit code\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace:\n${r.stderr}`)
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '))
  assert.equal(errors.length, 1, `exactly one error line:\n${r.stderr}`)
  assert.match(errors[0], pattern)
  assert.equal(r.stdout, '', 'nothing on stdout, so $(…) stays empty')
  return errors[0]
}

describe('errors: one sentence, right exit code, no stack trace', () => {
  let home = ''
  const cli = (...args: string[]) => runCli(args, { home })

  before(async () => {
    home = tempHome()
    const r = await cli('device', 'create', 'dup1')
    assert.equal(r.code, 0, r.stderr)
  })

  test('unknown device (show, update, delete, sas, connection-string)', async () => {
    const rs = await Promise.all([
      cli('device', 'show', 'nope'),
      cli('device', 'update', 'nope', '--status', 'disabled'),
      cli('device', 'delete', 'nope'),
      cli('sas', '--device', 'nope'),
      cli('connection-string', 'show', '--device', 'nope'),
    ])
    for (const r of rs) failed(r, 1, /^error: device "nope" not found$/)
  })

  test('invalid ids: a slash, 129 characters, a space in a module id', async () => {
    const [slash, long, mod] = await Promise.all([
      cli('device', 'create', 'bad/id'),
      cli('device', 'create', 'x'.repeat(129)),
      cli('module', 'create', '--device', 'dup1', 'bad mod'),
    ])
    failed(slash, 1, /^error: invalid device id "bad\/id"$/)
    failed(long, 1, /^error: invalid device id "x+…"$/)
    failed(mod, 1, /^error: invalid module id "bad mod"$/)
    assert.match(slash.stderr, /^hint: ids are 1–128 characters/m)
    // 128 is still fine.
    assert.equal((await cli('device', 'create', 'y'.repeat(128))).code, 0)
  })

  test('duplicate id', async () => {
    failed(await cli('device', 'create', 'dup1'), 1, /^error: device "dup1" already exists$/)
  })

  test('bad base64 key, and a key of the wrong length', async () => {
    const [notB64, short] = await Promise.all([
      cli('device', 'create', 'k1', '--primary-key', 'not base64!'),
      cli('device', 'create', 'k2', '--primary-key', Buffer.alloc(8).toString('base64')),
    ])
    failed(notB64, 1, /^error: the primary key is not valid base64 of 16–64 bytes$/)
    failed(short, 1, /^error: the primary key is not valid base64 of 16–64 bytes$/)
    failed(await cli('sas', '--resource', 'h.azure-devices.net', '--key', '%%%'), 1, /not valid base64/)
  })

  test('-n naming another hub', async () => {
    const [create, sas] = await Promise.all([
      cli('hub', 'device-identity', 'create', '--device-id', 'x1', '--hub-name', 'otherhub'),
      cli('hub', 'generate-sas-token', '-n', 'otherhub', '-d', 'dup1'),
    ])
    for (const r of [create, sas]) failed(r, 1, /^error: hub "otherhub" is not the local hub; this home holds hub "edgemq"$/)
  })

  test('unreadable home: a file where the home should be, a path through a file, a garbage registry.db', async () => {
    const base = tempHome()
    const file = join(base, 'a-file')
    writeFileSync(file, 'not a directory')
    const garbageHome = join(base, 'garbage')
    mkdirSync(garbageHome)
    // Tests run as root, so chmod 000 would not stop us: corrupt bytes do.
    writeFileSync(join(garbageHome, 'registry.db'), Buffer.from('this is not an SQLite database, just some bytes'.repeat(100)))
    const [asHome, through, garbage] = await Promise.all([
      runCli(['device', 'list'], { home: file }),
      runCli(['device', 'list', '--home', join(file, 'sub')]),
      runCli(['device', 'list'], { home: garbageHome }),
    ])
    failed(asHome, 1, /^error: home ".*a-file" is not a directory$/)
    failed(through, 1, /^error: cannot use home ".*a-file\/sub": ENOTDIR$/)
    failed(garbage, 1, /^error: the registry .*registry\.db is not readable: file is not a database$/)
  })

  test('unknown flag, missing id, bad option value', async () => {
    const [flag, missing, option] = await Promise.all([
      cli('device', 'create', 'z1', '--bogus'),
      cli('device', 'show'),
      cli('device', 'list', '-o', 'yaml'),
    ])
    failed(flag, 1, /^error: Nonexistent flag: --bogus$/)
    assert.match(flag.stderr, /^hint: see `edgemq device create --help`$/m)
    failed(missing, 1, /^error: missing device id$/)
    failed(option, 1, /^error: Expected --output=yaml to be one of: json, table, tsv$/)
  })

  test('--log-level debug shows the stack (so the rule above is a choice, not an accident)', async () => {
    const r = await cli('device', 'show', 'nope', '--log-level', 'debug')
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\n\s+at /)
    // The CLI runs bundled (scripts/bundle.mjs): the frames still name the TypeScript sources.
    assert.match(r.stderr, /\(.*src\/registry\/registry\.ts:\d+:\d+\)/)
    const eq = await cli('device', 'show', 'nope', '--log-level=debug')
    assert.match(eq.stderr, /\(.*src\/registry\/registry\.ts:\d+:\d+\)/)
    const env = await runCli(['device', 'show', 'nope'], { home, env: { EDGEMQ_DEBUG: '1' } })
    assert.match(env.stderr, /\(.*src\/registry\/registry\.ts:\d+:\d+\)/)
  })
})
