/**
 * mosquitto_sub's output, byte for byte, so scripts can swap `mosquitto_sub` and `edgemq sub`.
 *
 * Follows mosquitto 2.0 `client/sub_client_output.c` (print_message / formatted_print) and the
 * format checker in `client/client_shared.c`, checked against the real mosquitto_sub 2.0.11:
 * - default: the payload, then "\n" (-N: no newline); an empty payload prints nothing at all;
 * - -v: "<topic> <payload>\n"; an empty payload prints "<topic> (null)\n" (nothing with -N);
 * - -F: `%` parameters with flags/width/precision (`%-10t`, `%05l`, `%10.10t`), `@` strftime
 *   sequences (`@Y`, `@N` nanoseconds, `@@`), `\` escapes; a newline is appended unless -N.
 * Output is built as Buffers: payloads are raw bytes (binary-safe, never re-decoded as UTF-8).
 * Pure functions: the clock is passed in so tests are deterministic.
 */
import { UsageError } from '../errors.js'

/** What the formatter needs from a received PUBLISH (MQTT.js packet fields, decoupled). */
export interface ReceivedMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  /** Packet identifier (0 for QoS 0, as libmosquitto reports it). */
  mid: number
  /** MQTT 5 properties, when the broker sent any. */
  properties?: MessageProperties
}

export interface MessageProperties {
  payloadFormatIndicator?: boolean | number
  messageExpiryInterval?: number
  topicAlias?: number
  responseTopic?: string
  correlationData?: Buffer
  userProperties?: Record<string, string | string[]>
  subscriptionIdentifier?: number | number[]
  contentType?: string
}

export interface OutputOptions {
  /** -F format string (already validated by compileFormat). */
  format?: string
  /** -v */
  verbose?: boolean
  /** false with -N */
  eol?: boolean
  /** --pretty: indented JSON for %j/%J (cJSON_Print uses tabs). */
  pretty?: boolean
}

/** A timestamp with nanoseconds (mosquitto uses clock_gettime; we get ms + hrtime nanos). */
export interface Clock {
  /** Seconds since the epoch. */
  seconds: number
  /** Nanoseconds within the second. */
  nanos: number
  /** Minutes east of UTC (the negation of Date#getTimezoneOffset). */
  utcOffsetMinutes: number
  /** Zone abbreviation for @Z (strftime %Z). */
  zoneName: string
}

export function systemClock(now: Date = new Date()): Clock {
  const ms = now.getTime()
  // Milliseconds from Date, sub-millisecond digits from hrtime: monotonic enough for display.
  const subMs = Number(process.hrtime.bigint() % 1_000_000n)
  return {
    seconds: Math.floor(ms / 1000),
    nanos: (ms % 1000) * 1_000_000 + subMs,
    utcOffsetMinutes: -now.getTimezoneOffset(),
    zoneName: zoneAbbreviation(now),
  }
}

/** @Z (strftime %Z). Intl's short names match libc's for UTC and US zones; elsewhere it may say "GMT+1" where libc says "CET". */
function zoneAbbreviation(d: Date): string {
  return new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? 'UTC'
}

/** The `%` parameters mosquitto 2.0 accepts (check_format in client_shared.c). */
const PERCENT_PARAMS = new Set(['%', 'A', 'C', 'D', 'E', 'F', 'I', 'j', 'J', 'l', 'm', 'p', 'P', 'q', 'R', 'r', 'S', 't', 'U', 'x', 'X'])
const ESCAPES: Record<string, string> = { '\\': '\\', '0': '\0', a: '\x07', e: '\x1b', n: '\n', r: '\r', t: '\t', v: '\v' }

/**
 * Validates a -F format like mosquitto does before connecting; throws UsageError with the same
 * wording ("invalid format specifier '%k'"). Returns the format unchanged.
 */
export function compileFormat(format: string): string {
  const len = format.length
  const incomplete = () => new UsageError('incomplete format specifier in -F', 'a %, @ or \\ at the end needs a letter after it (use %% for a literal %)')
  for (let i = 0; i < len; i++) {
    const c = format[i]
    if (c === '%') {
      if (i === len - 1) throw incomplete()
      if (format[i + 1] === '0' || format[i + 1] === '-') {
        i++
        if (i === len - 1) throw incomplete()
      }
      while (isDigit(format[i + 1])) {
        i++
        if (i === len - 1) throw incomplete()
      }
      if (format[i + 1] === '.') {
        i++
        if (i === len - 1) throw incomplete()
        while (isDigit(format[i + 1])) {
          i++
          if (i === len - 1) throw incomplete()
        }
      }
      const p = format[i + 1]
      if (!PERCENT_PARAMS.has(p)) {
        throw new UsageError(`invalid format specifier '%${p}' in -F`, 'see `man mosquitto_sub` (OUTPUT FORMAT): %t topic, %p payload, %q qos, %r retain, %l length, %x hex, …')
      }
      i++
    } else if (c === '@') {
      if (i === len - 1) throw incomplete()
      i++
    } else if (c === '\\') {
      if (i === len - 1) throw new UsageError('incomplete escape specifier in -F', 'use \\\\ for a literal backslash')
      const e = format[i + 1]
      if (!(e in ESCAPES)) throw new UsageError(`invalid escape specifier '\\${e}' in -F`, 'escapes are \\\\ \\0 \\a \\e \\n \\r \\t \\v')
      i++
    }
  }
  return format
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9'
}

/**
 * The bytes mosquitto_sub prints for one message, or an empty Buffer when it prints nothing.
 * `onError` receives the messages mosquitto writes to stderr (e.g. %J with a non-JSON payload).
 */
export function formatMessage(msg: ReceivedMessage, opts: OutputOptions = {}, clock: Clock = systemClock(), onError?: (line: string) => void): Buffer {
  const eol = opts.eol !== false
  if (opts.format !== undefined) return formatted(msg, opts.format, eol, clock, opts.pretty === true, onError)
  if (opts.verbose) {
    if (msg.payload.length > 0) return Buffer.concat([Buffer.from(`${msg.topic} `), msg.payload, eol ? NL : EMPTY])
    return eol ? Buffer.from(`${msg.topic} (null)\n`) : EMPTY
  }
  if (msg.payload.length > 0) return eol ? Buffer.concat([msg.payload, NL]) : msg.payload
  // mosquitto 2.0 prints nothing at all (not even the newline) for an empty payload.
  return EMPTY
}

const NL = Buffer.from('\n')
const EMPTY = Buffer.alloc(0)

interface Spec {
  align: '' | '-'
  pad: ' ' | '0'
  width: number
  precision: number
}

function formatted(msg: ReceivedMessage, format: string, eol: boolean, clock: Clock, pretty: boolean, onError?: (line: string) => void): Buffer {
  const out: Buffer[] = []
  const text = (s: string) => out.push(Buffer.from(s, 'utf8'))
  const len = format.length
  for (let i = 0; i < len; i++) {
    const c = format[i]
    if (c === '%') {
      const spec: Spec = { align: '', pad: ' ', width: 0, precision: -1 }
      if (i < len - 1) {
        i++
        if (format[i] === '-') {
          spec.align = '-'
          if (i < len - 1) i++
        }
        if (format[i] === '0') {
          spec.pad = '0'
          if (i < len - 1) i++
        }
        while (i < len - 1 && isDigit(format[i])) {
          spec.width = spec.width * 10 + Number(format[i])
          i++
        }
        if (format[i] === '.' && i < len - 1) {
          i++
          spec.precision = 0
          while (i < len - 1 && isDigit(format[i])) {
            spec.precision = spec.precision * 10 + Number(format[i])
            i++
          }
        }
        if (i < len) percent(msg, format[i], spec, out, clock, pretty, onError)
      }
    } else if (c === '@') {
      if (i < len - 1) {
        i++
        const t = format[i]
        if (t === '@') text('@')
        else if (t === 'N') text(String(clock.nanos).padStart(9, '0'))
        else text(strftime(t, clock))
      }
    } else if (c === '\\') {
      if (i < len - 1) {
        i++
        const e = ESCAPES[format[i]]
        if (e !== undefined) text(e)
      }
    } else {
      text(c)
    }
  }
  if (eol) out.push(NL)
  return Buffer.concat(out)
}

function percent(msg: ReceivedMessage, p: string, spec: Spec, out: Buffer[], clock: Clock, pretty: boolean, onError?: (line: string) => void): void {
  const push = (b: Buffer): void => {
    out.push(b)
  }
  const text = (s: string): void => push(Buffer.from(s, 'utf8'))
  const props = msg.properties ?? {}
  const optInt = (v: number | undefined) => text(v === undefined ? spec.pad.repeat(spec.width) : fmtInt(v, spec))
  const optStr = (v: string | undefined) => (v === undefined ? text(' '.repeat(spec.width)) : push(fmtStr(v, spec)))
  switch (p) {
    case '%':
      return text('%')
    case 'A':
      return optInt(props.topicAlias)
    case 'C':
      return optStr(props.contentType)
    case 'D':
      if (props.correlationData) push(props.correlationData)
      return
    case 'E':
      return optInt(props.messageExpiryInterval)
    case 'F':
      return optInt(props.payloadFormatIndicator === undefined ? undefined : Number(props.payloadFormatIndicator))
    case 'I':
      return push(fmtStr(isoTime(clock), spec))
    case 'j':
    case 'J': {
      const json = jsonMessage(msg, clock, p === 'j', pretty)
      if (json === undefined) onError?.(`Error: Message payload is not valid JSON on topic ${msg.topic}.`)
      else push(json)
      return
    }
    case 'l':
      return text(fmtInt(msg.payload.length, spec))
    case 'm':
      return text(fmtInt(msg.mid, spec))
    case 'P':
      return text(userProps(props.userProperties))
    case 'p':
      return push(payloadField(msg.payload, 0, spec))
    case 'q':
      return text(String(msg.qos))
    case 'R':
      if (props.responseTopic !== undefined) push(fmtStr(props.responseTopic, spec))
      return
    case 'r':
      return text(msg.retain ? '1' : '0')
    case 'S': {
      const s = props.subscriptionIdentifier
      return optInt(Array.isArray(s) ? s[0] : s)
    }
    case 't':
      return push(fmtStr(msg.topic, spec))
    case 'U':
      return text(`${clock.seconds}.${String(clock.nanos).padStart(9, '0')}`)
    case 'x':
      return push(payloadField(msg.payload, 1, spec))
    case 'X':
      return push(payloadField(msg.payload, 2, spec))
    default:
      return // unknown parameters print nothing (compileFormat rejects them up front)
  }
}

/** printf("%d") with mosquitto's flag handling: "-" left-aligns, "0" zero-pads. */
function fmtInt(v: number, spec: Spec): string {
  const s = String(Math.trunc(v))
  if (spec.width === 0) return s
  if (spec.align === '-') return s.padEnd(spec.width, ' ')
  if (spec.pad === '0') return s.startsWith('-') ? '-' + s.slice(1).padStart(spec.width - 1, '0') : s.padStart(spec.width, '0')
  return s.padStart(spec.width, ' ')
}

/**
 * printf("%*.*s") on the UTF-8 bytes, as C does: precision truncates, width pads with blanks
 * (the "0" flag only applies to numbers).
 */
function fmtStr(v: string, spec: Spec): Buffer {
  let b = Buffer.from(v, 'utf8')
  if (spec.precision >= 0 && b.length > spec.precision) b = b.subarray(0, spec.precision)
  if (b.length >= spec.width) return b
  const pad = Buffer.from(' '.repeat(spec.width - b.length))
  return spec.align === '-' ? Buffer.concat([b, pad]) : Buffer.concat([pad, b])
}

/**
 * write_payload() from mosquitto: with a width, the payload is CUT to the width (hex: to
 * width/2 bytes) and padded to it — quirky, but it is what scripts see from mosquitto_sub.
 */
function payloadField(payload: Buffer, hex: 0 | 1 | 2, spec: Spec): Buffer {
  let n = payload.length
  let padLen: number
  if (spec.width > 0) {
    if (n > spec.width) n = spec.width
    if (hex > 0) {
      n = Math.floor(n / 2)
      padLen = spec.width - n * 2
    } else {
      padLen = spec.width - n
    }
  } else {
    padLen = spec.width - n
  }
  const bytes = payload.subarray(0, n)
  const body = hex === 0 ? bytes : Buffer.from(hex === 1 ? bytes.toString('hex') : bytes.toString('hex').toUpperCase())
  const pad = Buffer.from(padLen > 0 ? (spec.align === '-' ? ' ' : spec.pad).repeat(padLen) : '')
  return spec.align === '-' ? Buffer.concat([body, pad]) : Buffer.concat([pad, body])
}

function userProps(up: Record<string, string | string[]> | undefined): string {
  if (!up) return ''
  const pairs: string[] = []
  for (const [k, v] of Object.entries(up)) for (const one of Array.isArray(v) ? v : [v]) pairs.push(`${k}:${one}`)
  return pairs.join(' ')
}

// ---------------------------------------------------------------------------------------------
// Time: strftime for the @ sequences, %I (ISO 8601 "%FT%T%z"), %U
// ---------------------------------------------------------------------------------------------

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']

/** Local broken-down time of the clock (local = the clock's UTC offset, like localtime(3)). */
function brokenDown(clock: Clock): Date {
  // A Date whose UTC fields are the local fields: avoids depending on the process TZ in tests.
  return new Date((clock.seconds + clock.utcOffsetMinutes * 60) * 1000)
}

const p2 = (n: number) => String(n).padStart(2, '0')

function tzOffset(clock: Clock): string {
  const m = clock.utcOffsetMinutes
  const a = Math.abs(m)
  return `${m < 0 ? '-' : '+'}${p2(Math.floor(a / 60))}${p2(a % 60)}`
}

function isoTime(clock: Clock): string {
  return `${strftime('F', clock)}T${strftime('T', clock)}${tzOffset(clock)}`
}

/** The strftime(3) conversions people use in @ sequences; others are printed as written. */
export function strftime(conv: string, clock: Clock): string {
  const d = brokenDown(clock)
  const Y = d.getUTCFullYear()
  const mo = d.getUTCMonth()
  const day = d.getUTCDate()
  const H = d.getUTCHours()
  const M = d.getUTCMinutes()
  const S = d.getUTCSeconds()
  const wd = d.getUTCDay()
  const yday = Math.floor((Date.UTC(Y, mo, day) - Date.UTC(Y, 0, 1)) / 86_400_000) + 1
  const h12 = H % 12 === 0 ? 12 : H % 12
  switch (conv) {
    case 'Y': return String(Y)
    case 'C': return p2(Math.floor(Y / 100))
    case 'y': return p2(Y % 100)
    case 'm': return p2(mo + 1)
    case 'd': return p2(day)
    case 'e': return String(day).padStart(2, ' ')
    case 'H': return p2(H)
    case 'k': return String(H).padStart(2, ' ')
    case 'I': return p2(h12)
    case 'l': return String(h12).padStart(2, ' ')
    case 'M': return p2(M)
    case 'S': return p2(S)
    case 'p': return H < 12 ? 'AM' : 'PM'
    case 'P': return H < 12 ? 'am' : 'pm'
    case 'j': return String(yday).padStart(3, '0')
    case 'a': return DAYS[wd].slice(0, 3)
    case 'A': return DAYS[wd]
    case 'b':
    case 'h': return MONTHS[mo].slice(0, 3)
    case 'B': return MONTHS[mo]
    case 'u': return String(wd === 0 ? 7 : wd)
    case 'w': return String(wd)
    case 's': return String(clock.seconds)
    case 'z': return tzOffset(clock)
    case 'Z': return clock.zoneName
    case 'F': return `${Y}-${p2(mo + 1)}-${p2(day)}`
    case 'T': return `${p2(H)}:${p2(M)}:${p2(S)}`
    case 'R': return `${p2(H)}:${p2(M)}`
    case 'D': return `${p2(mo + 1)}/${p2(day)}/${p2(Y % 100)}`
    case 'r': return `${p2(h12)}:${p2(M)}:${p2(S)} ${H < 12 ? 'AM' : 'PM'}`
    case 'c': return `${DAYS[wd].slice(0, 3)} ${MONTHS[mo].slice(0, 3)} ${String(day).padStart(2, ' ')} ${p2(H)}:${p2(M)}:${p2(S)} ${Y}`
    case 'x': return `${p2(mo + 1)}/${p2(day)}/${p2(Y % 100)}`
    case 'X': return `${p2(H)}:${p2(M)}:${p2(S)}`
    case 'n': return '\n'
    case 't': return '\t'
    case '%': return '%'
    default: return `%${conv}`
  }
}

// ---------------------------------------------------------------------------------------------
// %j / %J: mosquitto's JSON line (cJSON build, as Debian/Ubuntu ship it)
// ---------------------------------------------------------------------------------------------

/**
 * `{"tst":…,"topic":…,"qos":…,"retain":…,"payloadlen":…[,"mid":…][,"properties":{…}],"payload":…}`.
 * tst is mosquitto's odd "%Y-%m-%dT%H:%M:%S.<µs>Z%z". %j quotes the payload as a JSON string
 * (escaping at the byte level like cJSON, so non-UTF-8 bytes pass through); %J embeds it raw
 * and returns undefined when it is not JSON.
 */
function jsonMessage(msg: ReceivedMessage, clock: Clock, escaped: boolean, pretty: boolean): Buffer | undefined {
  const tst = `${strftime('F', clock)}T${strftime('T', clock)}.${String(Math.floor(clock.nanos / 1000)).padStart(6, '0')}Z${tzOffset(clock)}`
  const fields: Array<[string, Buffer]> = [
    ['tst', Buffer.from(JSON.stringify(tst))],
    ['topic', Buffer.from(JSON.stringify(msg.topic))],
    ['qos', Buffer.from(String(msg.qos))],
    ['retain', Buffer.from(msg.retain ? '1' : '0')],
    ['payloadlen', Buffer.from(String(msg.payload.length))],
  ]
  if (msg.qos > 0) fields.push(['mid', Buffer.from(String(msg.mid))])
  const props = jsonProperties(msg.properties)
  if (props) fields.push(['properties', Buffer.from(JSON.stringify(props))])
  if (msg.payload.length === 0) {
    fields.push(['payload', Buffer.from('null')])
  } else if (escaped) {
    fields.push(['payload', jsonStringBytes(msg.payload)])
  } else {
    const s = msg.payload.toString('utf8')
    try {
      JSON.parse(s)
    } catch {
      return undefined
    }
    fields.push(['payload', pretty ? Buffer.from(JSON.stringify(JSON.parse(s), null, '\t')) : msg.payload])
  }
  if (pretty) {
    const parts = fields.map(([k, v]) => Buffer.concat([Buffer.from(`\t${JSON.stringify(k)}:\t`), Buffer.from(v.toString('utf8').replace(/\n/g, '\n\t'))]))
    return Buffer.concat([Buffer.from('{\n'), ...parts.flatMap((p, i) => (i < parts.length - 1 ? [p, Buffer.from(',\n')] : [p])), Buffer.from('\n}')])
  }
  const parts = fields.map(([k, v]) => Buffer.concat([Buffer.from(`${JSON.stringify(k)}:`), v]))
  return Buffer.concat([Buffer.from('{'), ...parts.flatMap((p, i) => (i < parts.length - 1 ? [p, Buffer.from(',')] : [p])), Buffer.from('}')])
}

/** cJSON's string escaping, on bytes: `"` `\` and control characters escaped, the rest raw. */
function jsonStringBytes(payload: Buffer): Buffer {
  // cJSON_CreateString reads a C string: the payload ends at its first NUL byte.
  const nul = payload.indexOf(0)
  const bytes = nul >= 0 ? payload.subarray(0, nul) : payload
  const out: number[] = [0x22]
  const short: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' }
  for (const b of bytes) {
    const s = short[b]
    if (s !== undefined) out.push(...Buffer.from(s))
    else if (b < 0x20) out.push(...Buffer.from(`\\u${b.toString(16).padStart(4, '0')}`))
    else out.push(b)
  }
  out.push(0x22)
  return Buffer.from(out)
}

function jsonProperties(p: MessageProperties | undefined): Record<string, unknown> | undefined {
  if (!p) return undefined
  const o: Record<string, unknown> = {}
  if (p.payloadFormatIndicator !== undefined) o['payload-format-indicator'] = Number(p.payloadFormatIndicator)
  if (p.messageExpiryInterval !== undefined) o['message-expiry-interval'] = p.messageExpiryInterval
  if (p.contentType !== undefined) o['content-type'] = p.contentType
  if (p.responseTopic !== undefined) o['response-topic'] = p.responseTopic
  if (p.correlationData !== undefined) o['correlation-data'] = p.correlationData.toString('utf8')
  if (p.subscriptionIdentifier !== undefined) o['subscription-identifier'] = Array.isArray(p.subscriptionIdentifier) ? p.subscriptionIdentifier[0] : p.subscriptionIdentifier
  if (p.topicAlias !== undefined) o['topic-alias'] = p.topicAlias
  if (p.userProperties) {
    const up: Record<string, string> = {}
    for (const [k, v] of Object.entries(p.userProperties)) up[k] = Array.isArray(v) ? v[v.length - 1] : v
    o['user-properties'] = up
  }
  return Object.keys(o).length ? o : undefined
}
