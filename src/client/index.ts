/**
 * mosquitto-compatible MQTT clients (`edgemq pub` / `edgemq sub`) as a library: the option model,
 * the --device credential builder, the mosquitto_sub output formatter, and the runners.
 */
export { brokerPorts, parseBrokerState, readBrokerState, DEFAULT_MQTT_PORT, DEFAULT_MQTTS_PORT, type BrokerPorts, type BrokerState } from './broker-state.js'
export {
  ConnectionRefusedError,
  IOT_HUB_API_VERSION,
  connackString,
  connectionErrorLine,
  deviceConnectOptions,
  openClient,
  reasonString,
  redactPassword,
  resolveClientOptions,
  type ClientConnectOptions,
  type OpenOptions,
  type ResolveOptions,
} from './connect.js'
export { compileFormat, formatMessage, strftime, systemClock, type Clock, type MessageProperties, type OutputOptions, type ReceivedMessage } from './format.js'
export {
  appendPropertyBag,
  parseConnectionOptions,
  parseProtocolVersion,
  parsePubOptions,
  parseQos,
  parseSeconds,
  parseSubOptions,
  parseUrl,
  type ConnectionOptions,
  type MessageSource,
  type ProtocolVersion,
  type PubOptions,
  type QoS,
  type RawConnectionFlags,
  type RawPubFlags,
  type RawSubFlags,
  type SubOptions,
  type TlsOptions,
  type WillOptions,
} from './options.js'
export { endClient, lines, loadPayload, runPub, type PubIo, type PubResult } from './pub.js'
export { runSub, toReceived, type SubIo, type SubResult, type SubStop } from './sub.js'
