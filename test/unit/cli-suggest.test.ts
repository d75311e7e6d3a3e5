/** "Did you mean …?" for mistyped commands (issue 17, CLI discoverability). */
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { editDistance, suggestCommand, unknownCommandLines } from '../../src/cli/suggest.js'

const KNOWN = ['device', 'device:list', 'device:create', 'hub', 'hub:device-identity', 'hub:device-identity:create', 'pub', 'sub', 'sas', 'sas:decode']

test('editDistance counts inserts, deletes and substitutions', () => {
  assert.equal(editDistance('devce', 'device'), 1)
  assert.equal(editDistance('', 'abc'), 3)
  assert.equal(editDistance('kitten', 'sitting'), 3)
  assert.equal(editDistance('same', 'same'), 0)
})

test('a typo names the closest command in space notation', () => {
  assert.equal(suggestCommand(['devce', 'list'], KNOWN), 'device list')
  assert.equal(suggestCommand(['pb'], KNOWN), 'pub')
  assert.equal(suggestCommand(['hub', 'device-identiy', 'create'], KNOWN), 'hub device-identity create')
})

test('trailing words may be arguments; the most specific command within reach wins', () => {
  assert.equal(suggestCommand(['device', 'creat', 'd1'], KNOWN), 'device create')
  assert.equal(suggestCommand(['devce'], KNOWN), 'device')
})

test('nothing close → no suggestion', () => {
  assert.equal(suggestCommand(['xyzzy'], KNOWN), undefined)
  assert.equal(suggestCommand(['frobnicate', 'everything'], KNOWN), undefined)
})

test('the message says what was typed and, when there is one, the suggestion', () => {
  const [error, hint] = unknownCommandLines(['devce', 'list'], KNOWN)
  assert.equal(error, 'error: "edgemq devce list" is not a command')
  assert.match(hint, /did you mean device list\?/)
  assert.doesNotMatch(hint, /device:list/)
  assert.match(unknownCommandLines(['xyzzy'], KNOWN)[1], /edgemq --help/)
})
