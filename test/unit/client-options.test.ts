// The pub/sub option model (mosquitto's shared argument rules), the --device credential builder,
// flags → MQTT.js options resolution, and the broker.json reader. Pure: no broker, no processes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { parseBrokerState, readBrokerState } from '../../src/client/broker-state.js'
import { connectionErrorLine, deviceConnectOptions, redactPassword, resolveClientOptions } from '../../src/client/connect.js'
import { appendPropertyBag, parseProtocolVersion, parsePubOptions, parseSubOptions, parseUrl } from '../../src/client/options.js'
import { UsageError } from '../../src/errors.js'

const usage = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message))

test('pub: exactly one message source; topic required and free of wildcards; QoS 0–2', () => {
  assert.deepEqual(parsePubOptions({ topic: 'x', message: 'hi' }).source, { kind: 'message', payload: Buffer.from('hi') })
  assert.equal(parsePubOptions({ topic: 'x', 'null-message': true }).source.kind, 'null')
  assert.equal(parsePubOptions({ topic: 'x', 'stdin-line': true }).source.kind, 'stdin-line')
  usage(() => parsePubOptions({ topic: 'x' }), /no message given/)
  usage(() => parsePubOptions({ topic: 'x', message: 'a', file: 'f' }), /only one message source.*-m and -f/)
  usage(() => parsePubOptions({ topic: 'x', 'stdin-line': true, 'stdin-file': true }), /-l and -s/)
  usage(() => parsePubOptions({ message: 'a' }), /no topic given/)
  usage(() => parsePubOptions({ topic: 'a/#', message: 'a' }), /invalid publish topic 'a\/#'/)
  usage(() => parsePubOptions({ topic: 'a/+/b', message: 'a' }), /invalid publish topic/)
  usage(() => parsePubOptions({ topic: 'x', message: 'a', qos: 3 }), /invalid QoS 3/)
  usage(() => parsePubOptions({ topic: 'x', message: 'a', qos: -1 }), /invalid QoS -1/)
  assert.equal(parsePubOptions({ topic: 'x', message: 'a', qos: 2, retain: true }).qos, 2)
})

test('sub: filters validated, -C/-W >= 1, -R with --retained-only refused, -F checked up front', () => {
  const o = parseSubOptions({ topic: ['a/#', '+/b'], count: 2, timeout: 5, verbose: true })
  assert.deepEqual(o.topics, ['a/#', '+/b'])
  assert.equal(o.count, 2)
  assert.equal(o.timeoutSecs, 5)
  assert.equal(o.output.verbose, true)
  usage(() => parseSubOptions({}), /no topic/)
  usage(() => parseSubOptions({ topic: ['a/#/b'] }), /invalid subscription topic/)
  usage(() => parseSubOptions({ topic: ['a'], 'filter-out': ['a#'] }), /invalid filter topic/)
  usage(() => parseSubOptions({ topic: ['a'], count: 0 }), /invalid message count/)
  usage(() => parseSubOptions({ topic: ['a'], timeout: 0 }), /invalid timeout/)
  usage(() => parseSubOptions({ topic: ['a'], 'no-retained': true, 'retained-only': true }), /makes no sense/)
  usage(() => parseSubOptions({ topic: ['a'], format: '%k' }), /invalid format specifier/)
  // mosquitto: -F wins over -v
  assert.equal(parseSubOptions({ topic: ['a'], verbose: true, format: '%p' }).output.format, '%p')
})

test('shared connection rules: -V names, keepalive range, -c needs an id, -i/-I exclusive, will needs a topic, --cert with --key', () => {
  assert.equal(parseProtocolVersion(undefined), 4)
  assert.equal(parseProtocolVersion('mqttv31'), 3)
  assert.equal(parseProtocolVersion('311'), 4)
  assert.equal(parseProtocolVersion('mqttv5'), 5)
  assert.equal(parseProtocolVersion('5'), 5)
  usage(() => parseProtocolVersion('mqttv4'), /invalid protocol version/)
  usage(() => parseSubOptions({ topic: ['a'], keepalive: 2 }), /keepalive/)
  usage(() => parseSubOptions({ topic: ['a'], 'disable-clean-session': true }), /-c needs a client id/)
  assert.equal(parseSubOptions({ topic: ['a'], 'disable-clean-session': true, id: 'me' }).connection.clean, false)
  assert.equal(parseSubOptions({ topic: ['a'], 'disable-clean-session': true, device: 'd1' }).connection.clean, false)
  usage(() => parseSubOptions({ topic: ['a'], id: 'a', 'id-prefix': 'b' }), /-i and -I/)
  usage(() => parseSubOptions({ topic: ['a'], 'will-payload': 'x' }), /no will topic/)
  usage(() => parseSubOptions({ topic: ['a'], 'will-topic': 'w/#' }), /invalid publish topic/)
  usage(() => parseSubOptions({ topic: ['a'], cert: 'c.pem' }), /--cert and --key/)
  usage(() => parseSubOptions({ topic: ['a'], module: 'm' }), /--module needs --device/)
  usage(() => parseSubOptions({ topic: ['a'], 'session-expiry-interval': 10 }), /needs MQTT 5/)
  assert.equal(parseSubOptions({ topic: ['a'], 'protocol-version': '5', 'disable-clean-session': true, id: 'x' }).connection.sessionExpiry, 0xffffffff)
})

test('-L URL: scheme, credentials, host, port, topic', () => {
  assert.deepEqual(parseUrl('mqtts://u:p%40ss@broker.local:8884/a/b'), { tls: true, username: 'u', password: 'p@ss', host: 'broker.local', port: 8884, topic: 'a/b' })
  assert.deepEqual(parseUrl('mqtt://127.0.0.1/t'), { tls: false, username: undefined, password: undefined, host: '127.0.0.1', port: undefined, topic: 't' })
  usage(() => parseUrl('http://x/t'), /unsupported URL scheme/)
  usage(() => parseUrl('mqtt://x'), /invalid URL/)
  const o = parseSubOptions({ url: 'mqtt://h:1999/x/y' })
  assert.deepEqual(o.topics, ['x/y'])
  assert.equal(o.connection.port, 1999)
})

test('--props: MQTT 5 user properties; MQTT 3.1.1 appends the IoT Hub property bag to telemetry topics only', () => {
  const v5 = parsePubOptions({ topic: 'x', message: 'a', props: 'k=v&k2=v%202', 'protocol-version': 'mqttv5' })
  assert.deepEqual(v5.userProperties, { k: 'v', k2: 'v 2' })
  assert.equal(v5.topic, 'x')
  assert.equal(parsePubOptions({ topic: 'devices/d1/messages/events/', message: 'a', props: 'k=v&$.ct=application/json' }).topic, 'devices/d1/messages/events/%24.ct=application%2Fjson&k=v')
  assert.equal(appendPropertyBag('devices/d1/messages/events', 'a=1'), 'devices/d1/messages/events/a=1')
  assert.equal(appendPropertyBag('devices/d1/modules/m1/messages/events/', 'a=1'), 'devices/d1/modules/m1/messages/events/a=1')
  assert.equal(appendPropertyBag('devices/d1/messages/events/x=1', 'a=1'), 'devices/d1/messages/events/x=1&a=1')
  usage(() => parsePubOptions({ topic: 'plain/topic', message: 'a', props: 'k=v' }), /--props needs MQTT 5 or an IoT Hub telemetry topic/)
})

test('deviceConnectOptions: the seed\'s client id / user name / SAS password, TLS with the hub CA on the broker\'s TLS port', () => {
  const o = deviceConnectOptions('edgemq.azure-devices.net', 'sub_client', undefined, 'SharedAccessSignature sr=x&sig=y&se=1', 'CA PEM', {
    host: '127.0.0.1',
    ports: { mqtt: 41883, mqtts: 48883 },
  })
  assert.equal(o.clientId, 'sub_client')
  assert.equal(o.username, 'edgemq.azure-devices.net/sub_client/?api-version=2021-04-12')
  assert.equal(o.password, 'SharedAccessSignature sr=x&sig=y&se=1')
  assert.equal(o.protocol, 'mqtts')
  assert.equal(o.host, '127.0.0.1')
  assert.equal(o.port, 48883)
  assert.equal(o.ca, 'CA PEM')
  const m = deviceConnectOptions('myhub', 'edge', 'filter', 'sas', 'ca')
  assert.equal(m.clientId, 'edge/filter')
  assert.equal(m.username, 'myhub.azure-devices.net/edge/filter/?api-version=2021-04-12')
  assert.equal(m.port, 8883) // no broker state: IoT Edge's default
})

test('resolveClientOptions: mosquitto defaults, explicit flags override --device values, -p <plain port> drops TLS', () => {
  const base = parseSubOptions({ topic: ['a'] }).connection
  const d = resolveClientOptions(base, { kind: 'sub', pid: 42 })
  assert.deepEqual([d.protocol, d.host, d.port, d.clientId, d.protocolVersion, d.keepalive, d.clean, d.reconnectPeriod], ['mqtt', 'localhost', 1883, 'edgemq_sub_42', 4, 60, true, 0])

  const ca = resolveClientOptions(parseSubOptions({ topic: ['a'], cafile: '/ca.pem' }).connection, { kind: 'pub', pid: 1, readFile: () => Buffer.from('CA') })
  assert.deepEqual([ca.protocol, ca.port, String(ca.ca)], ['mqtts', 8883, 'CA'])
  const insecure = resolveClientOptions(parseSubOptions({ topic: ['a'], insecure: true }).connection, { kind: 'pub' })
  assert.equal(typeof insecure.checkServerIdentity, 'function')
  assert.equal(insecure.rejectUnauthorized, true)

  const state = { host: '127.0.0.1', ports: { mqtt: 41883, mqtts: 48883 } }
  const auto = deviceConnectOptions('h', 'dev', undefined, 'SAS', 'CA', state)
  const dev = parseSubOptions({ topic: ['a'], device: 'dev' }).connection
  const a = resolveClientOptions(dev, { kind: 'sub', auto, brokerState: state })
  assert.deepEqual([a.protocol, a.host, a.port, a.clientId, a.username, a.password, a.ca], ['mqtts', '127.0.0.1', 48883, 'dev', auto.username, 'SAS', 'CA'])
  const over = resolveClientOptions(parseSubOptions({ topic: ['a'], device: 'dev', id: 'other', username: 'u', pw: 'p', host: 'localhost' }).connection, { kind: 'sub', auto, brokerState: state })
  assert.deepEqual([over.clientId, over.username, over.password, over.host, over.port], ['other', 'u', 'p', 'localhost', 48883])
  const plain = resolveClientOptions(parseSubOptions({ topic: ['a'], device: 'dev', port: 41883 }).connection, { kind: 'sub', auto, brokerState: state })
  assert.deepEqual([plain.protocol, plain.port, plain.password], ['mqtt', 41883, 'SAS'])

  usage(() => resolveClientOptions(parseSubOptions({ topic: ['a'], pw: 'p' }).connection, { kind: 'sub' }), /-P needs -u/)
  usage(() => resolveClientOptions(parseSubOptions({ topic: ['a'], cafile: '/nope.pem' }).connection, { kind: 'sub' }), /cannot read --cafile/)
})

test('refusal wording is mosquitto\'s; SAS signatures are redacted in debug output', () => {
  assert.equal(connectionErrorLine(5, 4), 'Connection error: Connection Refused: not authorised.')
  assert.equal(connectionErrorLine(4, 4), 'Connection error: Connection Refused: bad user name or password.')
  assert.equal(connectionErrorLine(2, 3), 'Connection error: Connection Refused: identifier rejected.')
  assert.equal(connectionErrorLine(0x87, 5), 'Connection error: Not authorized')
  assert.equal(connectionErrorLine(0x84, 5), 'Connection error: Unsupported Protocol Version. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.')
  assert.equal(redactPassword('SharedAccessSignature sr=a&sig=SECRET%3D&se=1'), 'SharedAccessSignature sr=a&sig=…redacted&se=1')
  assert.equal(redactPassword('hunter2'), '…redacted')
})

test('broker.json: parsed when valid and its pid alive; absent, malformed or stale → undefined', () => {
  const home = mkdtempSync(join(tmpdir(), 'edgemq-client-'))
  try {
    assert.equal(readBrokerState(home), undefined)
    writeFileSync(join(home, 'broker.json'), JSON.stringify({ pid: process.pid, host: '127.0.0.1', ports: { mqtt: 1, mqtts: 2, control: 3 } }))
    assert.deepEqual(readBrokerState(home), { pid: process.pid, host: '127.0.0.1', ports: { mqtt: 1, mqtts: 2, control: 3 } })
    writeFileSync(join(home, 'broker.json'), '{not json')
    assert.equal(readBrokerState(home), undefined)
    // A pid that cannot exist (above Linux's pid_max): a broker that died.
    writeFileSync(join(home, 'broker.json'), JSON.stringify({ pid: 2 ** 30, ports: { mqtt: 1 } }))
    assert.equal(readBrokerState(home), undefined)
    assert.equal(parseBrokerState({ ports: {} }), undefined)
    assert.equal(parseBrokerState({ ports: { mqtt: 70000 } }), undefined)
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
})
