/**
 * The pub/sub option model: raw flag values in, validated options out (pure, no I/O).
 *
 * mosquitto keeps one argument parser for both clients (client/client_shared.c) so pub and sub
 * never disagree on what a flag means; this is that parser for edgemq. The oclif flag table is in
 * ./flags.ts; the checks here are the ones mosquitto makes (QoS range, topic validity, one message
 * source, -c needs an id, …) and a few MQTT.js's CLI skips. Every failure is a UsageError with one
 * sentence saying what to do (exit 1).
 */
import { UsageError } from '../errors.js'
import { parseIotHubTopic } from '../iothub/topics.js'
import { encodePropertyBag, parsePropsFlag } from '../iothub/propertyBag.js'
import { topicFilterError, topicNameError } from '../policy/topic.js'
import { compileFormat, type OutputOptions } from './format.js'

export type QoS = 0 | 1 | 2
/** MQTT protocol level on the wire: 3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0. */
export type ProtocolVersion = 3 | 4 | 5

/** Flag values shared by pub and sub (mosquitto's client_shared options). */
export interface RawConnectionFlags {
  host?: string
  port?: number
  id?: string
  'id-prefix'?: string
  username?: string
  pw?: string
  'protocol-version'?: string
  keepalive?: number
  'disable-clean-session'?: boolean
  'session-expiry-interval'?: number
  url?: string
  cafile?: string
  capath?: string
  cert?: string
  key?: string
  insecure?: boolean
  'tls-version'?: string
  ciphers?: string
  'tls-use-os-certs'?: boolean
  'will-topic'?: string
  'will-payload'?: string
  'will-qos'?: number
  'will-retain'?: boolean
  debug?: boolean
  quiet?: boolean
  device?: string
  module?: string
}

export interface RawPubFlags extends RawConnectionFlags {
  topic?: string
  message?: string
  file?: string
  'stdin-line'?: boolean
  'stdin-file'?: boolean
  'null-message'?: boolean
  qos?: number
  retain?: boolean
  props?: string
  repeat?: number
  'repeat-delay'?: number
}

export interface RawSubFlags extends RawConnectionFlags {
  topic?: string[]
  qos?: number
  count?: number
  timeout?: number
  verbose?: boolean
  format?: string
  'no-eol'?: boolean
  'no-retained'?: boolean
  'retained-only'?: boolean
  'remove-retained'?: boolean
  'filter-out'?: string[]
  'exit-after-subscribe'?: boolean
  pretty?: boolean
}

export interface TlsOptions {
  caFile?: string
  caPath?: string
  certFile?: string
  keyFile?: string
  /** mosquitto --insecure: the chain is still verified, the host name is not. */
  insecure: boolean
  /** 'TLSv1.3' | 'TLSv1.2' | 'TLSv1.1' */
  version?: 'TLSv1.3' | 'TLSv1.2' | 'TLSv1.1'
  ciphers?: string
}

export interface WillOptions {
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
}

/** Connection settings as the user gave them; undefined = not given (auto/default fills in). */
export interface ConnectionOptions {
  host?: string
  port?: number
  clientId?: string
  /** -I: the client id is this prefix + the process id. */
  clientIdPrefix?: string
  username?: string
  password?: string
  protocolVersion: ProtocolVersion
  keepalive: number
  clean: boolean
  /** MQTT 5 session expiry (seconds; 0xFFFFFFFF = never). */
  sessionExpiry?: number
  /** TLS settings when TLS was asked for (--cafile, --capath, --cert, --insecure, mqtts:// …). */
  tls?: TlsOptions
  will?: WillOptions
  debug: boolean
  quiet: boolean
  /** --device/--module: credentials from the registry. */
  device?: { deviceId: string; moduleId?: string }
}

export type MessageSource =
  | { kind: 'message'; payload: Buffer }
  | { kind: 'file'; path: string }
  | { kind: 'stdin-line' }
  | { kind: 'stdin-file' }
  | { kind: 'null' }

export interface PubOptions {
  connection: ConnectionOptions
  /** The topic to publish to, with the --props bag appended when it rides in the topic (3.1.1). */
  topic: string
  source: MessageSource
  qos: QoS
  retain: boolean
  /** MQTT 5 user properties from --props (only with -V 5). */
  userProperties?: Record<string, string>
  repeat: number
  repeatDelayMs: number
}

export interface SubOptions {
  connection: ConnectionOptions
  topics: string[]
  qos: QoS
  /** -C: exit after this many printed messages. */
  count?: number
  /** -W: give up (exit 4) after this many seconds. */
  timeoutSecs?: number
  output: OutputOptions
  /** -R */
  noRetained: boolean
  retainedOnly: boolean
  removeRetained: boolean
  /** -T filters: matching messages are not printed (nor counted). */
  filterOut: string[]
  /** -E */
  exitAfterSubscribe: boolean
}

/** A seconds value given as text (decimals allowed, like mosquitto's --repeat-delay). */
export function parseSeconds(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`invalid ${flag} "${v}"`, 'give a number of seconds >= 0, e.g. 0.5')
  return n
}

export function parseQos(v: number | undefined, flag = '-q'): QoS {
  if (v === undefined) return 0
  if (v === 0 || v === 1 || v === 2) return v
  throw new UsageError(`invalid QoS ${v} for ${flag}`, 'QoS is 0, 1 or 2')
}

/** -V: mosquitto's names (mqttv31, mqttv311, mqttv5) and the bare numbers. */
export function parseProtocolVersion(v: string | undefined): ProtocolVersion {
  if (v === undefined) return 4 // mosquitto's default: MQTT v3.1.1
  switch (v.toLowerCase()) {
    case 'mqttv31':
    case '31':
    case '3':
      return 3
    case 'mqttv311':
    case '311':
    case '4':
      return 4
    case 'mqttv5':
    case '5':
      return 5
    default:
      throw new UsageError(`invalid protocol version "${v}" for -V`, 'use mqttv31, mqttv311 or mqttv5 (or 31, 311, 5)')
  }
}

function checkTopicName(topic: string, flag: string): string {
  const err = topicNameError(topic)
  if (err) throw new UsageError(`invalid publish topic '${topic}' for ${flag}: ${err}`, 'wildcards (+, #) are for subscribing; publish to one concrete topic')
  return topic
}

function checkTopicFilter(filter: string, flag: string): string {
  const err = topicFilterError(filter)
  if (err) throw new UsageError(`invalid subscription topic '${filter}' for ${flag}: ${err}`)
  return filter
}

/** -L mqtt(s)://[username[:password]@]host[:port]/topic, as mosquitto parses it. */
export function parseUrl(url: string): { tls: boolean; host: string; port?: number; username?: string; password?: string; topic: string } {
  const m = /^(mqtts?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/(.+)$/.exec(url)
  if (!m) {
    if (!/^mqtts?:\/\//.test(url)) throw new UsageError(`unsupported URL scheme in -L "${url}"`, 'use mqtt://host[:port]/topic or mqtts://…')
    throw new UsageError(`invalid URL for -L "${url}"`, 'the form is mqtt(s)://[username[:password]@]host[:port]/topic (the topic is required)')
  }
  const port = m[5] === undefined ? undefined : Number(m[5])
  if (port !== undefined && (port < 1 || port > 65535)) throw new UsageError(`invalid port ${port} in -L`, 'ports are 1–65535')
  return {
    tls: m[1] === 'mqtts',
    username: m[2] === undefined || m[2] === '' ? undefined : decodeURIComponent(m[2]),
    password: m[3] === undefined ? undefined : decodeURIComponent(m[3]),
    host: m[4].replace(/^\[|\]$/g, ''),
    port,
    topic: m[6],
  }
}

export function parseConnectionOptions(f: RawConnectionFlags): { connection: ConnectionOptions; urlTopic?: string } {
  const protocolVersion = parseProtocolVersion(f['protocol-version'])
  const url = f.url === undefined ? undefined : parseUrl(f.url)

  if (f.port !== undefined && (f.port < 1 || f.port > 65535)) throw new UsageError(`invalid port ${f.port} for -p`, 'ports are 1–65535')
  const keepalive = f.keepalive ?? 60
  // mosquitto 2.0: "it must be between 5 and 65535 inclusive" (0 would disable keepalive).
  if (keepalive < 5 || keepalive > 65535) throw new UsageError(`invalid keepalive ${keepalive} for -k`, 'use 5–65535 seconds')
  if (f.id !== undefined && f['id-prefix'] !== undefined) throw new UsageError('-i and -I cannot be used together', 'give a full client id (-i) or a prefix (-I)')
  if (f.id === '') throw new UsageError('-i needs a client id')
  if (f.module !== undefined && f.device === undefined) throw new UsageError('--module needs --device', 'pass --device <edgeDeviceId> --module <moduleId>')
  if (f.device !== undefined && f.url !== undefined) throw new UsageError('--device and -L cannot be used together', '--device picks host, port and credentials itself')

  const clean = !f['disable-clean-session']
  // -c keeps a session on the broker, which is keyed by client id: a random id would leak it.
  if (!clean && f.id === undefined && f['id-prefix'] === undefined && f.device === undefined) {
    throw new UsageError('-c needs a client id', 'pass -i <id> (or --device) so the broker can find the session again')
  }

  let sessionExpiry: number | undefined
  if (f['session-expiry-interval'] !== undefined) {
    const x = f['session-expiry-interval']
    if (protocolVersion !== 5) throw new UsageError('-x (session expiry) needs MQTT 5', 'add -V mqttv5')
    if (x < -1 || x > 0xffffffff) throw new UsageError(`session expiry ${x} out of range for -x`, 'use 0–4294967294 seconds, or -1 for never')
    sessionExpiry = x === -1 ? 0xffffffff : x
  } else if (protocolVersion === 5 && !clean) {
    sessionExpiry = 0xffffffff // mosquitto: "-1 if -c is also given"
  }

  const tlsVersions = { 'tlsv1.3': 'TLSv1.3', 'tlsv1.2': 'TLSv1.2', 'tlsv1.1': 'TLSv1.1' } as const
  let tlsVersion: TlsOptions['version']
  if (f['tls-version'] !== undefined) {
    tlsVersion = tlsVersions[f['tls-version'].toLowerCase() as keyof typeof tlsVersions]
    if (!tlsVersion) throw new UsageError(`invalid --tls-version "${f['tls-version']}"`, 'use tlsv1.3, tlsv1.2 or tlsv1.1')
  }
  if ((f.cert === undefined) !== (f.key === undefined)) throw new UsageError('--cert and --key go together', 'give both the client certificate and its private key')
  const wantsTls =
    url?.tls === true ||
    [f.cafile, f.capath, f.cert, f['tls-version'], f.ciphers].some((v) => v !== undefined) ||
    f.insecure === true ||
    f['tls-use-os-certs'] === true
  const tls: TlsOptions | undefined = wantsTls
    ? { caFile: f.cafile, caPath: f.capath, certFile: f.cert, keyFile: f.key, insecure: f.insecure === true, version: tlsVersion, ciphers: f.ciphers }
    : undefined

  let will: WillOptions | undefined
  if (f['will-topic'] !== undefined) {
    will = {
      topic: checkTopicName(f['will-topic'], '--will-topic'),
      payload: Buffer.from(f['will-payload'] ?? '', 'utf8'),
      qos: parseQos(f['will-qos'], '--will-qos'),
      retain: f['will-retain'] === true,
    }
  } else if (f['will-payload'] !== undefined || f['will-retain'] || f['will-qos'] !== undefined) {
    throw new UsageError('will payload, QoS or retain given, but no will topic', 'add --will-topic <topic>')
  }

  return {
    connection: {
      host: f.host ?? url?.host,
      port: f.port ?? url?.port,
      clientId: f.id,
      clientIdPrefix: f['id-prefix'],
      username: f.username ?? url?.username,
      password: f.pw ?? url?.password,
      protocolVersion,
      keepalive,
      clean,
      sessionExpiry,
      tls,
      will,
      debug: f.debug === true,
      quiet: f.quiet === true,
      device: f.device === undefined ? undefined : { deviceId: f.device, moduleId: f.module },
    },
    urlTopic: url?.topic,
  }
}

export function parsePubOptions(f: RawPubFlags): PubOptions {
  const { connection, urlTopic } = parseConnectionOptions(f)
  if (f.topic !== undefined && urlTopic !== undefined) throw new UsageError('-t and -L both give a topic', 'pass the topic once')
  const topic0 = f.topic ?? urlTopic
  if (topic0 === undefined) throw new UsageError('no topic given', 'pass -t <topic>')
  const topic = checkTopicName(topic0, '-t')

  const given: Array<[string, MessageSource]> = []
  if (f.message !== undefined) given.push(['-m', { kind: 'message', payload: Buffer.from(f.message, 'utf8') }])
  if (f.file !== undefined) given.push(['-f', { kind: 'file', path: f.file }])
  if (f['stdin-line']) given.push(['-l', { kind: 'stdin-line' }])
  if (f['stdin-file']) given.push(['-s', { kind: 'stdin-file' }])
  if (f['null-message']) given.push(['-n', { kind: 'null' }])
  if (given.length === 0) throw new UsageError('no message given', 'pass one of -m <message>, -f <file>, -l (stdin lines), -s (all of stdin) or -n (empty message)')
  if (given.length > 1) throw new UsageError(`only one message source at a time: ${given.map(([k]) => k).join(' and ')} were both given`, 'pick one of -m, -f, -l, -s, -n')
  const source = given[0][1]

  const repeat = f.repeat ?? 1
  if (repeat < 1) throw new UsageError(`--repeat must be at least 1 (got ${repeat})`)
  if (repeat > 1 && source.kind === 'stdin-line') throw new UsageError('--repeat does not apply to -l', 'use it with -m, -f, -s or -n')
  const repeatDelay = f['repeat-delay'] ?? 0
  if (repeatDelay < 0) throw new UsageError(`--repeat-delay must be >= 0 (got ${repeatDelay})`)

  let finalTopic = topic
  let userProperties: Record<string, string> | undefined
  if (f.props !== undefined) {
    const bag = parsePropsFlag(f.props)
    if (connection.protocolVersion === 5) {
      // MQTT 5 carries them natively; system properties keep their wire names ($.ct, $.mid, …).
      userProperties = { ...bag.properties }
      for (const pair of encodePropertyBag({}, bag.systemProperties).split('&')) {
        if (pair === '') continue
        const [k, v] = pair.split('=')
        userProperties[decodeURIComponent(k)] = decodeURIComponent(v ?? '')
      }
    } else {
      finalTopic = appendPropertyBag(topic, encodePropertyBag(bag.properties, bag.systemProperties))
    }
  }

  return {
    connection,
    topic: finalTopic,
    source,
    qos: parseQos(f.qos),
    retain: f.retain === true,
    userProperties,
    repeat,
    repeatDelayMs: Math.round(repeatDelay * 1000),
  }
}

/**
 * MQTT 3.1.1 has no user properties: IoT Hub carries them as a URL-encoded bag at the end of the
 * telemetry topic (devices/<d>[/modules/<m>]/messages/events/<bag>). Any other topic has nowhere
 * to put them, so that is a usage error rather than silently dropping them.
 */
export function appendPropertyBag(topic: string, bag: string): string {
  if (bag === '') return topic
  if (parseIotHubTopic(topic).kind !== 'telemetry') {
    throw new UsageError(
      `--props needs MQTT 5 or an IoT Hub telemetry topic, and '${topic}' is neither`,
      'add -V mqttv5 (user properties), or publish to devices/<d>/messages/events/ where the properties ride in the topic',
    )
  }
  if (topic.endsWith('/')) return topic + bag
  if (/\/messages\/events$/.test(topic)) return `${topic}/${bag}`
  return `${topic}&${bag}` // the topic already carries a bag: extend it
}

export function parseSubOptions(f: RawSubFlags): SubOptions {
  const { connection, urlTopic } = parseConnectionOptions(f)
  const topics = [...(urlTopic === undefined ? [] : [urlTopic]), ...(f.topic ?? [])]
  if (topics.length === 0) throw new UsageError('no topic to subscribe to', 'pass -t <filter> (repeatable)')
  for (const t of topics) checkTopicFilter(t, '-t')
  const filterOut = (f['filter-out'] ?? []).map((t) => {
    const err = topicFilterError(t)
    if (err) throw new UsageError(`invalid filter topic '${t}' for -T: ${err}`)
    return t
  })
  if (f.count !== undefined && f.count < 1) throw new UsageError(`invalid message count ${f.count} for -C`, 'use 1 or more')
  if (f.timeout !== undefined && f.timeout < 1) throw new UsageError(`invalid timeout ${f.timeout} for -W`, 'use 1 or more seconds')
  if (f['no-retained'] && f['retained-only']) throw new UsageError("combining -R and --retained-only makes no sense", 'pick one')
  // With both -v and -F, -F wins (as in mosquitto, so scripts passing both behave the same).
  const format = f.format === undefined ? undefined : compileFormat(f.format)
  return {
    connection,
    topics,
    qos: parseQos(f.qos),
    count: f.count,
    timeoutSecs: f.timeout,
    output: { format, verbose: f.verbose === true, eol: !f['no-eol'], pretty: f.pretty === true },
    noRetained: f['no-retained'] === true,
    retainedOnly: f['retained-only'] === true,
    removeRetained: f['remove-retained'] === true,
    filterOut,
    exitAfterSubscribe: f['exit-after-subscribe'] === true,
  }
}
