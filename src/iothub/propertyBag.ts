/**
 * IoT Hub MQTT property bags: the URL-encoded `k=v&k2=v2` segment at the end of telemetry,
 * C2D and module-input topics (PROTOCOL.md §4; IoT Hub "Communicate with your IoT hub using
 * the MQTT protocol"). Pure functions, no I/O.
 *
 * Wire facts this follows (read from azure-iot-device-mqtt and the Azure Embedded C SDK):
 * - the Node device SDK writes keys and values with `encodeURIComponent`/`querystring.stringify`,
 *   so `$.mid` arrives as `%24.mid` and `application/json` as `application%2Fjson`;
 * - it reads them back by splitting on `&`, then `=`, and `decodeURIComponent` on both halves
 *   (a `+` is NOT a space there), mapping `$.mid $.to $.exp $.cid $.uid $.ct $.ce` to message
 *   fields and everything else to application properties;
 * - the Embedded C SDK matches the encoded names literally (`AZ_IOT_MESSAGE_PROPERTIES_MESSAGE_ID
 *   "%24.mid"`), so what we deliver must be percent-encoded exactly like `encodeURIComponent`.
 */

/** IoT Hub system properties carried in a property bag, by their SDK field names. */
export interface SystemProperties {
  messageId?: string
  correlationId?: string
  userId?: string
  to?: string
  contentType?: string
  contentEncoding?: string
  /** `$.on`: the module output a message was sent to (sendOutputEvent). */
  outputName?: string
  /** `$.exp`: absolute expiry time (ISO 8601) as the SDKs send it. */
  expiryTimeUtc?: string
}

export type SystemPropertyName = keyof SystemProperties

/** Wire key → field. Order = the order we write them in (SDK order: mid, cid, uid, to, ct, ce). */
export const SYSTEM_PROPERTY_KEYS: ReadonlyArray<readonly [string, SystemPropertyName]> = [
  ['$.mid', 'messageId'],
  ['$.cid', 'correlationId'],
  ['$.uid', 'userId'],
  ['$.to', 'to'],
  ['$.ct', 'contentType'],
  ['$.ce', 'contentEncoding'],
  ['$.on', 'outputName'],
  ['$.exp', 'expiryTimeUtc'],
]

/** The control API's headers for C2D system properties (IoT Hub's HTTPS names). */
export const C2D_SYSTEM_HEADERS: ReadonlyArray<readonly [SystemPropertyName, string]> = [
  ['messageId', 'iothub-messageid'],
  ['correlationId', 'iothub-correlationid'],
  ['userId', 'iothub-userid'],
  ['contentType', 'iothub-contenttype'],
  ['contentEncoding', 'iothub-contentencoding'],
  ['expiryTimeUtc', 'iothub-expiry'],
]

const BY_WIRE_KEY = new Map<string, SystemPropertyName>(SYSTEM_PROPERTY_KEYS.map(([k, f]) => [k, f]))

/** Set an own property even for the key `__proto__` (plain assignment would set the prototype). */
function setOwn(obj: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

export interface PropertyBag {
  /** Application properties (string → string), in the order they appeared. */
  properties: Record<string, string>
  systemProperties: SystemProperties
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** encodeURIComponent that never throws: a lone surrogate (not valid UTF-8) becomes U+FFFD. */
export function safeEncode(s: string): string {
  try {
    return encodeURIComponent(s)
  } catch {
    return encodeURIComponent(s.replace(LONE_SURROGATE, '\uFFFD'))
  }
}

/** decodeURIComponent that never throws: a malformed escape (`%zz`) is kept as written. */
export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/**
 * Parse a property bag segment. Empty pairs (`a=1&&b=2`, trailing `&`) are skipped; a key
 * without `=` gets the empty string; only the first `=` splits, so an unencoded `=` in a value
 * survives. A later duplicate key wins. Unknown `$.`-keys stay application properties, as in
 * the Node SDK.
 */
export function parsePropertyBag(bag: string): PropertyBag {
  const properties: Record<string, string> = {}
  const systemProperties: SystemProperties = {}
  if (bag === '') return { properties, systemProperties }
  for (const pair of bag.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const key = safeDecode(eq < 0 ? pair : pair.slice(0, eq))
    const value = eq < 0 ? '' : safeDecode(pair.slice(eq + 1))
    if (key === '') continue
    const field = BY_WIRE_KEY.get(key)
    if (field !== undefined) systemProperties[field] = value
    else setOwn(properties, key, value)
  }
  return { properties, systemProperties }
}

/**
 * Encode a property bag as IoT Hub and the SDKs do: system properties first, then application
 * properties, each `encodeURIComponent(key)=encodeURIComponent(value)` joined with `&`.
 * Returns '' when there is nothing to write.
 */
export function encodePropertyBag(properties: Record<string, string> = {}, systemProperties: SystemProperties = {}): string {
  const parts: string[] = []
  for (const [wireKey, field] of SYSTEM_PROPERTY_KEYS) {
    const v = systemProperties[field]
    if (v !== undefined) parts.push(`${safeEncode(wireKey)}=${safeEncode(v)}`)
  }
  for (const [k, v] of Object.entries(properties)) {
    parts.push(`${safeEncode(k)}=${safeEncode(v)}`)
  }
  return parts.join('&')
}

/**
 * Parse a `--props` flag value: az's form `a=1;b=2` (values taken literally, as az does; `$.ct`,
 * `$.ce`, … name system properties) or, when there is no `;`, the URL-encoded bag form `a=1&b=2`.
 */
export function parsePropsFlag(text: string): PropertyBag {
  if (!text.includes(';')) return parsePropertyBag(text)
  const properties: Record<string, string> = {}
  const systemProperties: SystemProperties = {}
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=')
    const key = (eq < 0 ? pair : pair.slice(0, eq)).trim()
    if (key === '') continue
    const value = eq < 0 ? '' : pair.slice(eq + 1)
    const field = BY_WIRE_KEY.get(key)
    if (field !== undefined) systemProperties[field] = value
    else setOwn(properties, key, value)
  }
  return { properties, systemProperties }
}
