// mosquitto_sub output formatting: default, -v, -N, -F tokens, binary payloads, %x/%X, %j.
// Expected bytes were taken from the real mosquitto_sub 2.0.11 fed the same messages.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { compileFormat, formatMessage, strftime, type Clock, type ReceivedMessage } from '../../src/client/format.js'
import { UsageError } from '../../src/errors.js'

// 2020-05-06T21:48:00.123456789Z, shown in UTC+01:00.
const CLOCK: Clock = { seconds: 1588801680, nanos: 123_456_789, utcOffsetMinutes: 60, zoneName: 'CET' }
const UTC: Clock = { ...CLOCK, utcOffsetMinutes: 0, zoneName: 'UTC' }

const msg = (over: Partial<ReceivedMessage> = {}): ReceivedMessage => ({
  topic: 'a/b',
  payload: Buffer.from('hello'),
  qos: 0,
  retain: false,
  mid: 0,
  ...over,
})
const fmt = (m: ReceivedMessage, format: string, clock: Clock = CLOCK) => formatMessage(m, { format: compileFormat(format) }, clock).toString('latin1')

test('default output: payload + newline; -N drops the newline; empty payload prints nothing', () => {
  assert.equal(formatMessage(msg()).toString(), 'hello\n')
  assert.equal(formatMessage(msg(), { eol: false }).toString(), 'hello')
  assert.equal(formatMessage(msg({ payload: Buffer.alloc(0) })).length, 0)
  assert.equal(formatMessage(msg({ payload: Buffer.alloc(0) }), { eol: false }).length, 0)
})

test('-v: "topic payload"; empty payload is "topic (null)", nothing with -N', () => {
  assert.equal(formatMessage(msg(), { verbose: true }).toString(), 'a/b hello\n')
  assert.equal(formatMessage(msg({ payload: Buffer.from('two words') }), { verbose: true }).toString(), 'a/b two words\n')
  assert.equal(formatMessage(msg({ payload: Buffer.alloc(0) }), { verbose: true }).toString(), 'a/b (null)\n')
  assert.equal(formatMessage(msg({ payload: Buffer.alloc(0) }), { verbose: true, eol: false }).length, 0)
  assert.equal(formatMessage(msg(), { verbose: true, eol: false }).toString(), 'a/b hello')
})

test('binary payloads pass through byte for byte (no UTF-8 re-encoding)', () => {
  const payload = Buffer.from([0x78, 0x00, 0xff, 0x0a, 0xc3])
  assert.deepEqual(formatMessage(msg({ payload })), Buffer.concat([payload, Buffer.from('\n')]))
  assert.deepEqual(formatMessage(msg({ payload }), { verbose: true }), Buffer.concat([Buffer.from('a/b '), payload, Buffer.from('\n')]))
  assert.deepEqual(formatMessage(msg({ payload }), { format: '%p' }), Buffer.concat([payload, Buffer.from('\n')]))
})

test('-F basic tokens: %t %p %q %r %l %m %%', () => {
  assert.equal(fmt(msg(), '%t %p %q %r'), 'a/b hello 0 0\n')
  assert.equal(fmt(msg({ qos: 1, retain: true, mid: 7 }), '%t %p %q %r %l %m %%'), 'a/b hello 1 1 5 7 %\n')
  assert.equal(fmt(msg({ payload: Buffer.alloc(0) }), '[%p]%l'), '[]0\n')
})

test('-F %x / %X: payload as lower/upper hex', () => {
  const payload = Buffer.from([0x78, 0x00, 0xff, 0x0a])
  assert.equal(fmt(msg({ payload }), '%x|%X'), '7800ff0a|7800FF0A\n')
  assert.equal(fmt(msg({ payload: Buffer.from('two words') }), '%x'), '74776f20776f726473\n')
})

test('-F is exactly mosquitto_sub 2.0.11 for a mixed format (width, alignment, zero pad, escapes)', () => {
  const F = '%t|%p|%q|%r|%l|%m|%x|%X|%5t|%-5l|%05l|%%|\\t.'
  // Lines captured from mosquitto_sub -F with that format.
  assert.equal(fmt(msg(), F), 'a/b|hello|0|0|5|0|68656c6c6f|68656C6C6F|  a/b|5    |00005|%|\t.\n')
  assert.equal(fmt(msg({ topic: 'a/c', payload: Buffer.alloc(0) }), F), 'a/c||0|0|0|0|||  a/c|0    |00000|%|\t.\n')
  assert.equal(
    formatMessage(msg({ topic: 'a/d', payload: Buffer.from([0x78, 0x00, 0xff, 0x0a]) }), { format: F }, CLOCK).toString('latin1'),
    'a/d|x\x00\xff\n|0|0|4|0|7800ff0a|7800FF0A|  a/d|4    |00004|%|\t.\n',
  )
})

test('-F width quirks follow write_payload(): %Np cuts the payload to N, %Nx to N/2 bytes', () => {
  // Captured from mosquitto_sub 2.0.11 -F '[%5p][%8p][%-8p][%6x][%.2t][%6.2t][%-6t]' on topic "w".
  const F = '[%5p][%8p][%-8p][%6x][%.2t][%6.2t][%-6t]'
  assert.equal(fmt(msg({ topic: 'w', payload: Buffer.from('hello world') }), F), '[hello][hello wo][hello wo][68656c][w][     w][w     ]\n')
  assert.equal(fmt(msg({ topic: 'w' }), F), '[hello][   hello][hello   ][  6865][w][     w][w     ]\n')
  assert.equal(fmt(msg(), '[%.2t][%6.2t]'), '[a/][    a/]\n')
})

test('-F escapes: \\n \\t \\\\ \\0 \\e; -N still applies', () => {
  assert.equal(fmt(msg(), '%t\\n%p\\t!\\\\'), 'a/b\nhello\t!\\\n')
  assert.equal(fmt(msg(), '%t\\0%p'), 'a/b\0hello\n')
  assert.equal(fmt(msg(), '\\e[1m'), '\x1b[1m\n')
  assert.equal(formatMessage(msg(), { format: '%p', eol: false }).toString(), 'hello')
})

test('-F time: %I, %U, @ strftime, @N, @@', () => {
  assert.equal(fmt(msg(), '%I'), '2020-05-06T22:48:00+0100\n')
  assert.equal(fmt(msg(), '%I', UTC), '2020-05-06T21:48:00+0000\n')
  assert.equal(fmt(msg(), '%U'), '1588801680.123456789\n')
  assert.equal(fmt(msg(), '@Y-@m-@d @H:@M:@S @N @@ @z @Z @s @j', UTC), '2020-05-06 21:48:00 123456789 @ +0000 UTC 1588801680 127\n')
  assert.equal(strftime('a', UTC) + strftime('b', UTC), 'WedMay')
})

test('-F %j / %J: mosquitto\'s JSON line (cJSON escaping, mid only for QoS>0, null for empty)', () => {
  const tst = '2020-05-06T21:48:00.123456Z+0000'
  assert.equal(
    fmt(msg({ topic: 'j', payload: Buffer.from('{"a":1}') }), '%j', UTC),
    `{"tst":"${tst}","topic":"j","qos":0,"retain":0,"payloadlen":7,"payload":"{\\"a\\":1}"}\n`,
  )
  assert.equal(fmt(msg({ topic: 'j', payload: Buffer.from('{"a":1}') }), '%J', UTC), `{"tst":"${tst}","topic":"j","qos":0,"retain":0,"payloadlen":7,"payload":{"a":1}}\n`)
  assert.equal(fmt(msg({ topic: 'j', payload: Buffer.alloc(0), qos: 1, mid: 3 }), '%j', UTC), `{"tst":"${tst}","topic":"j","qos":1,"retain":0,"payloadlen":0,"mid":3,"payload":null}\n`)
  assert.equal(fmt(msg({ topic: 'j', payload: Buffer.from('a"b\\c/d\x01') }), '%j', UTC), `{"tst":"${tst}","topic":"j","qos":0,"retain":0,"payloadlen":8,"payload":"a\\"b\\\\c/d\\u0001"}\n`)
  const errors: string[] = []
  const out = formatMessage(msg({ topic: 'j', payload: Buffer.from('nope') }), { format: '%J' }, UTC, (l) => errors.push(l))
  assert.equal(out.toString(), '\n')
  assert.deepEqual(errors, ['Error: Message payload is not valid JSON on topic j.'])
})

test('-F MQTT 5 properties: %P user properties, %C content type, %R response topic, %E expiry; blanks when absent', () => {
  const m = msg({ properties: { userProperties: { a: '1', b: ['2', '3'] }, contentType: 'text/plain', responseTopic: 'r/t', messageExpiryInterval: 60 } })
  assert.equal(fmt(m, '%P|%C|%R|%E'), 'a:1 b:2 b:3|text/plain|r/t|60\n')
  assert.equal(fmt(msg(), '%P|%C|%R|%E|%5E|%5C'), '||||     |     \n')
})

test('compileFormat rejects what mosquitto rejects, with a UsageError', () => {
  for (const bad of ['%k', '%', 'a@', '\\q', '\\', '%5.3', '%-']) {
    assert.throws(() => compileFormat(bad), UsageError, bad)
  }
  assert.throws(() => compileFormat('%k'), /invalid format specifier '%k'/)
  for (const good of ['%t %p', '%-10.3t', '%05l', '@Y @@', '\\n\\t\\0\\\\', '%%', '%j %J %U %I %P %A %C %D %E %F %S %R %X %x %m %l %q %r']) {
    assert.equal(compileFormat(good), good)
  }
})
