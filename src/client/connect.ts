/**
 * From the option model to a connected MQTT.js client: the --device credential builder, the
 * flags → MQTT.js options resolution, the transport (one plain/TLS socket we own, so we see the
 * real socket error), and mosquitto's wording for refusals.
 */
import { readdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'

import { MqttClient, type IClientOptions, type IConnackPacket, type Packet } from 'mqtt'

import { BrokerUnreachableError, EdgeMqError, UsageError } from '../errors.js'
import { brokerPorts, DEFAULT_MQTT_PORT, DEFAULT_MQTTS_PORT, type BrokerState } from './broker-state.js'
import { packetDebugLine } from './debug.js'
import type { ConnectionOptions, TlsOptions } from './options.js'

/**
 * MQTT.js options plus the node:tls options it passes through to tls.connect unchanged
 * (its typings list only some of them).
 */
export type ClientConnectOptions = IClientOptions &
  Pick<tls.ConnectionOptions, 'checkServerIdentity' | 'minVersion' | 'maxVersion' | 'ciphers'> & {
    host: string
    port: number
    protocol: 'mqtt' | 'mqtts'
  }

/** The api-version the IoT Hub MQTT docs use in the username (the seed's 2018-06-30 works too). */
export const IOT_HUB_API_VERSION = '2021-04-12'

/** `<hub>` or `<hub>.azure-devices.net` → the host name that goes into the username. */
function hubHost(hub: string): string {
  return hub.includes('.') ? hub : `${hub}.azure-devices.net`
}

/**
 * What `--device <d> [--module <m>]` connects with (the seed's "Authentication" section):
 * client id `<d>` or `<d>/<m>`, username `<hub>.azure-devices.net/<d>[/<m>]/?api-version=…`,
 * password = the SAS token, TLS with the hub CA on the broker's TLS port (8883 when no broker
 * state is known). Pure: the caller fetches the SAS and the CA.
 */
export function deviceConnectOptions(
  hub: string,
  deviceId: string,
  moduleId: string | undefined,
  sas: string,
  ca: string,
  ports?: BrokerState,
): ClientConnectOptions {
  const p = brokerPorts(ports)
  const identity = moduleId === undefined ? deviceId : `${deviceId}/${moduleId}`
  return {
    protocol: 'mqtts',
    host: p.host,
    port: p.mqtts,
    clientId: identity,
    username: `${hubHost(hub)}/${identity}/?api-version=${IOT_HUB_API_VERSION}`,
    password: sas,
    ca,
    rejectUnauthorized: true,
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
  }
}

export interface ResolveOptions {
  /** 'pub' | 'sub': the default client id is edgemq_<kind>_<pid> (mosquitto_<kind>_<pid>). */
  kind: 'pub' | 'sub'
  pid?: number
  /** Auto values from --device (deviceConnectOptions); explicit flags override them. */
  auto?: ClientConnectOptions
  /** The running broker (plain port), so `--device -p <plain port>` connects without TLS. */
  brokerState?: BrokerState
  /** File reader (tests inject one). */
  readFile?: (path: string) => Buffer
  /** Directory lister for --capath. */
  readDir?: (path: string) => string[]
}

/**
 * The MQTT.js options for a connection: auto (--device) values first, then every flag the user
 * gave on top, then mosquitto's defaults (localhost, 1883, or 8883 with TLS; id edgemq_<kind>_<pid>).
 */
export function resolveClientOptions(c: ConnectionOptions, r: ResolveOptions): ClientConnectOptions {
  const readFile = r.readFile ?? ((p: string) => readFileSync(p))
  const auto = r.auto
  const pid = r.pid ?? process.pid

  // --device -p <the broker's plain port>: the user asked for plain MQTT on purpose.
  const plainPort = brokerPorts(r.brokerState).mqtt
  const autoTls = auto?.protocol === 'mqtts' && !(c.port !== undefined && c.port === plainPort && c.tls === undefined)
  const useTls = c.tls !== undefined || autoTls

  const clientId = c.clientId ?? (c.clientIdPrefix !== undefined ? `${c.clientIdPrefix}${pid}` : auto?.clientId ?? `edgemq_${r.kind}_${pid}`)
  const opts: ClientConnectOptions = {
    protocol: useTls ? 'mqtts' : 'mqtt',
    host: c.host ?? auto?.host ?? 'localhost',
    port: c.port ?? (auto ? (useTls ? auto.port : plainPort) : useTls ? DEFAULT_MQTTS_PORT : DEFAULT_MQTT_PORT),
    clientId,
    username: c.username ?? auto?.username,
    password: c.password ?? (auto?.password as string | undefined),
    protocolId: c.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: c.protocolVersion,
    keepalive: c.keepalive,
    clean: c.clean,
    // The CLI runs once: no reconnect loop, and subscriptions are made by us on CONNACK.
    reconnectPeriod: 0,
    resubscribe: false,
    connectTimeout: 30_000,
  }
  if (c.password !== undefined && opts.username === undefined) {
    // MQTT 3.1.1 [MQTT-3.1.2-22]: a password needs a user name; mosquitto refuses too.
    throw new UsageError('-P needs -u', 'MQTT 3.1.1 sends a password only together with a user name')
  }
  if (c.sessionExpiry !== undefined) opts.properties = { sessionExpiryInterval: c.sessionExpiry }
  if (c.will) opts.will = { topic: c.will.topic, payload: c.will.payload, qos: c.will.qos, retain: c.will.retain }

  if (useTls) {
    const t: TlsOptions = c.tls ?? { insecure: false }
    if (auto?.ca !== undefined && t.caFile === undefined && t.caPath === undefined) opts.ca = auto.ca
    if (t.caFile !== undefined) opts.ca = readTlsFile(readFile, t.caFile, '--cafile')
    if (t.caPath !== undefined) opts.ca = readCaPath(t.caPath, readFile, r.readDir)
    if (t.certFile !== undefined && t.keyFile !== undefined) {
      opts.cert = readTlsFile(readFile, t.certFile, '--cert')
      opts.key = readTlsFile(readFile, t.keyFile, '--key')
    }
    opts.rejectUnauthorized = true
    // --insecure (mosquitto): still verify the chain, skip only the host name check.
    if (t.insecure) opts.checkServerIdentity = () => undefined
    if (t.version) {
      opts.minVersion = t.version
      opts.maxVersion = t.version
    }
    if (t.ciphers) opts.ciphers = t.ciphers
  }
  return opts
}

function readTlsFile(readFile: (p: string) => Buffer, path: string, flag: string): Buffer {
  try {
    return readFile(path)
  } catch (err) {
    throw new UsageError(`cannot read ${flag} file "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, flag === '--cafile' ? 'the hub CA is at `edgemq cert ca`' : undefined)
  }
}

/** --capath: every PEM-looking file in the directory (OpenSSL hashes them; we just read them all). */
function readCaPath(dir: string, readFile: (p: string) => Buffer, readDir?: (p: string) => string[]): Buffer[] {
  let names: string[]
  try {
    names = (readDir ?? ((p: string) => readdirSync(p)))(dir)
  } catch (err) {
    throw new UsageError(`cannot read --capath directory "${dir}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  const pems = names.filter((n) => /\.(pem|crt|cer)$|^[0-9a-f]{8}\.\d+$/i.test(n)).map((n) => readTlsFile(readFile, join(dir, n), '--capath'))
  if (pems.length === 0) throw new UsageError(`no certificates (*.pem, *.crt) in --capath "${dir}"`)
  return pems
}

// ---------------------------------------------------------------------------------------------
// Refusal wording: mosquitto_connack_string (MQTT 3.x) and mosquitto_reason_string (MQTT 5)
// ---------------------------------------------------------------------------------------------

const CONNACK_V3: Record<number, string> = {
  0: 'Connection Accepted.',
  1: 'Connection Refused: unacceptable protocol version.',
  2: 'Connection Refused: identifier rejected.',
  3: 'Connection Refused: broker unavailable.',
  4: 'Connection Refused: bad user name or password.',
  5: 'Connection Refused: not authorised.',
}

const REASON_V5: Record<number, string> = {
  0x00: 'Success',
  0x80: 'Unspecified error',
  0x81: 'Malformed Packet',
  0x82: 'Protocol Error',
  0x83: 'Implementation specific error',
  0x84: 'Unsupported Protocol Version',
  0x85: 'Client Identifier not valid',
  0x86: 'Bad User Name or Password',
  0x87: 'Not authorized',
  0x88: 'Server unavailable',
  0x89: 'Server busy',
  0x8a: 'Banned',
  0x8b: 'Server shutting down',
  0x8c: 'Bad authentication method',
  0x8d: 'Keep Alive timeout',
  0x8e: 'Session taken over',
  0x8f: 'Topic Filter invalid',
  0x90: 'Topic Name invalid',
  0x91: 'Packet Identifier in use',
  0x92: 'Packet Identifier not found',
  0x93: 'Receive Maximum exceeded',
  0x94: 'Topic Alias invalid',
  0x95: 'Packet too large',
  0x96: 'Message rate too high',
  0x97: 'Quota exceeded',
  0x98: 'Administrative action',
  0x99: 'Payload format invalid',
  0x9a: 'Retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'Use another server',
  0x9d: 'Server moved',
  0x9e: 'Shared Subscriptions not supported',
  0x9f: 'Connection rate exceeded',
  0xa0: 'Maximum connect time',
  0xa1: 'Subscription identifiers not supported',
  0xa2: 'Wildcard Subscriptions not supported',
}

export function connackString(code: number): string {
  return CONNACK_V3[code] ?? 'Connection Refused: unknown reason.'
}

export function reasonString(code: number): string {
  return REASON_V5[code] ?? 'Unknown reason'
}

/** mosquitto_sub/pub's exact line for a refused CONNECT ("Connection error: Connection Refused: not authorised."). */
export function connectionErrorLine(code: number, protocolVersion: number): string {
  if (protocolVersion === 5) {
    // A 3.1.1-only broker answers an MQTT 5 CONNECT with the v3 code 1 (unacceptable protocol
    // version); libmosquitto reports that as v5's 0x84, and so do we.
    if (code === 1) code = 0x84
    if (code === 0x84) return `Connection error: ${reasonString(code)}. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.`
    return `Connection error: ${reasonString(code)}`
  }
  return `Connection error: ${connackString(code)}`
}

/** A CONNACK with a non-zero code (exit 1). `reasonCode` is the wire value. */
export class ConnectionRefusedError extends EdgeMqError {
  readonly reasonCode: number
  constructor(reasonCode: number, protocolVersion: number, hint?: string) {
    super(connectionErrorLine(reasonCode, protocolVersion), { exitCode: 1, code: 'CONNECTION_REFUSED', hint })
    this.reasonCode = reasonCode
  }
}

// ---------------------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------------------

/** A password for logs: SAS signatures redacted (PRODUCT.md: secrets never in logs). */
export function redactPassword(password: string | Buffer | undefined): string {
  if (password === undefined) return '(none)'
  const s = password.toString()
  if (/sig=/.test(s)) return s.replace(/sig=[^&\s]*/g, 'sig=…redacted')
  return '…redacted'
}

export interface OpenOptions {
  /** -d: mosquitto-style packet lines (stderr). */
  debug?: (line: string) => void
  /** Extra hint for refusals (e.g. how --device credentials are checked). */
  refusalHint?: string
  /** Called with the client before CONNECT is sent, to install handlers that must see everything. */
  onClient?: (client: MqttClient) => void
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EADDRNOTAVAIL'])

/**
 * Connects and resolves once the CONNACK accepted us. Failures become typed errors:
 * refused CONNACK → ConnectionRefusedError (1; pub/sub exit with the CONNACK code, see exit-code.ts),
 * nobody listening → BrokerUnreachableError (3; pub/sub 1),
 * TLS trouble → EdgeMqError (1) with a hint about --cafile/--insecure.
 */
export function openClient(opts: ClientConnectOptions, o: OpenOptions = {}): Promise<MqttClient> {
  const where = `${opts.host}:${opts.port}`
  let socketError: (Error & { code?: string }) | undefined
  // Our own transport: MQTT.js swallows some socket errors (TLS ones among them), and we want the
  // real reason in the message.
  const build = (): net.Socket => {
    const sock =
      opts.protocol === 'mqtts'
        ? tls.connect({
            host: opts.host,
            port: opts.port,
            ca: opts.ca,
            cert: opts.cert,
            key: opts.key as tls.ConnectionOptions['key'],
            rejectUnauthorized: opts.rejectUnauthorized !== false,
            // An explicit undefined would replace tls' default and trip a Node assertion.
            ...(opts.checkServerIdentity ? { checkServerIdentity: opts.checkServerIdentity } : {}),
            minVersion: opts.minVersion,
            maxVersion: opts.maxVersion,
            ciphers: opts.ciphers,
            // SNI only for names (RFC 6066 §3 forbids IP literals).
            servername: net.isIP(opts.host) ? undefined : opts.host,
          })
        : net.connect({ host: opts.host, port: opts.port })
    sock.on('error', (err: Error & { code?: string }) => {
      socketError ??= err
    })
    return sock
  }
  // manualConnect: our listeners (the -d CONNECT line among them) must be in place first.
  const client = new MqttClient(build, { ...opts, manualConnect: true })
  if (o.debug) attachDebug(client, String(opts.clientId), o.debug)
  o.onClient?.(client)

  return new Promise<MqttClient>((resolve, reject) => {
    let settled = false
    const fail = (err: Error) => {
      if (settled) return
      settled = true
      client.end(true)
      reject(err)
    }
    const onConnack = (packet: Packet) => {
      if (packet.cmd !== 'connack') return
      const p = packet as IConnackPacket
      const code = p.reasonCode ?? p.returnCode ?? 0
      if (code !== 0) fail(new ConnectionRefusedError(code, Number(opts.protocolVersion ?? 4), o.refusalHint))
    }
    client.on('packetreceive', onConnack)
    client.once('connect', () => {
      if (settled) return
      settled = true
      client.removeListener('packetreceive', onConnack)
      resolve(client)
    })
    client.on('error', (err: Error & { code?: string | number }) => {
      if (settled) return
      if (typeof err.code === 'number') return // the CONNACK refusal, reported by onConnack
      fail(mapSocketError(socketError ?? { name: err.name, message: err.message, code: err.code }, where, opts.protocol))
    })
    client.on('close', () => {
      if (settled) return
      if (socketError) fail(mapSocketError(socketError, where, opts.protocol))
      else fail(new EdgeMqError(`the broker at ${where} closed the connection before accepting it`, { hint: opts.protocol === 'mqtt' ? 'if that is a TLS port, pass --cafile (or use --device)' : undefined }))
    })
    client.connect()
  })
}

function mapSocketError(err: Error & { code?: string }, where: string, protocol: string): EdgeMqError {
  const code = err.code ?? ''
  if (UNREACHABLE.has(code)) return new BrokerUnreachableError(`broker not reachable at ${where} (${code})`, 'start it with `edgemq broker start`, or check -h and -p')
  if (/CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS|ERR_SSL|EPROTO/.test(code) || /certificate|SSL|TLS/i.test(err.message)) {
    const hint = /ALTNAME|Hostname\/IP/i.test(code + err.message)
      ? 'connect by a name the server certificate lists (localhost, 127.0.0.1), or pass --insecure to skip the host name check'
      : protocol === 'mqtts'
        ? 'trust the hub CA with --cafile "$(edgemq cert ca)" (or use --device), and check that -p is the TLS port'
        : undefined
    return new EdgeMqError(`TLS handshake with ${where} failed: ${err.message}`, { code: 'TLS', hint })
  }
  if (code === 'ECONNRESET') return new EdgeMqError(`the broker at ${where} reset the connection`, { hint: protocol === 'mqtt' ? 'if that is a TLS port, pass --cafile (or use --device)' : undefined })
  return new EdgeMqError(`cannot connect to ${where}: ${err.message}`)
}

function attachDebug(client: MqttClient, id: string, log: (line: string) => void): void {
  client.on('packetsend', (p: Packet) => {
    const line = packetDebugLine(id, 'sending', p)
    for (const l of line) log(l)
  })
  client.on('packetreceive', (p: Packet) => {
    const line = packetDebugLine(id, 'received', p)
    for (const l of line) log(l)
  })
}
