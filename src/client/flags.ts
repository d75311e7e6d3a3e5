/**
 * The pub/sub flag table (mosquitto's client/args.txt idea): one definition per flag, shared by
 * both commands so their meaning never drifts. Short forms and long names are mosquitto's
 * (`-P/--pw`, `-c/--disable-clean-session`, `-l/--stdin-line`, …); where mosquitto has no long
 * name we picked a descriptive one (`-C/--count`, `-W/--timeout`, `-F/--format`).
 * `-h` is the host (PRODUCT.md): help is `--help` only on these two commands.
 * Values are validated in ./options.ts (not with oclif's min/max) so the messages are ours.
 */
import { Flags } from '@oclif/core'

const CONNECTION = 'CONNECTION'
const TLS = 'TLS'
const IOT = 'IOT HUB'

export const connectionFlags = {
  host: Flags.string({ char: 'h', summary: 'Broker host (default localhost; with --device the running broker\'s).', helpGroup: CONNECTION }),
  port: Flags.integer({ char: 'p', summary: 'Broker port (default 1883, 8883 with TLS; with --device the running broker\'s TLS port).', helpGroup: CONNECTION }),
  id: Flags.string({ char: 'i', summary: 'Client id (default edgemq_<pub|sub>_<pid>; with --device <d>[/<m>]).', helpGroup: CONNECTION }),
  'id-prefix': Flags.string({ char: 'I', summary: 'Client id = this prefix + the process id.', helpGroup: CONNECTION }),
  username: Flags.string({ char: 'u', summary: 'User name.', helpGroup: CONNECTION }),
  pw: Flags.string({ char: 'P', aliases: ['password'], summary: 'Password (a SAS token for IoT Hub identities).', helpGroup: CONNECTION }),
  'protocol-version': Flags.string({ char: 'V', summary: 'MQTT version: mqttv31, mqttv311 (default) or mqttv5 (also 31, 311, 5).', helpGroup: CONNECTION }),
  keepalive: Flags.integer({ char: 'k', summary: 'Keep alive in seconds (5–65535, default 60).', helpGroup: CONNECTION }),
  'disable-clean-session': Flags.boolean({ char: 'c', summary: 'Persistent session (clean session off); needs a client id.', helpGroup: CONNECTION }),
  'session-expiry-interval': Flags.integer({ char: 'x', summary: 'MQTT 5 session expiry in seconds (-1 = never).', helpGroup: CONNECTION }),
  url: Flags.string({ char: 'L', summary: 'mqtt(s)://[username[:password]@]host[:port]/topic in one go.', helpGroup: CONNECTION }),
  debug: Flags.boolean({ char: 'd', summary: 'Print connection info and every packet (mosquitto\'s -d) to stderr.', helpGroup: CONNECTION }),
  quiet: Flags.boolean({ summary: "Don't print error messages.", helpGroup: CONNECTION }),
  'will-topic': Flags.string({ summary: 'Topic of the client Will.', helpGroup: CONNECTION }),
  'will-payload': Flags.string({ summary: 'Payload of the client Will (default empty).', helpGroup: CONNECTION }),
  'will-qos': Flags.integer({ summary: 'QoS of the client Will.', helpGroup: CONNECTION }),
  'will-retain': Flags.boolean({ summary: 'Retain the client Will.', helpGroup: CONNECTION }),
  cafile: Flags.string({ summary: 'Trusted CA certificates (PEM); enables TLS. The hub CA: --cafile "$(edgemq cert ca)".', helpGroup: TLS }),
  capath: Flags.string({ summary: 'Directory of trusted CA certificates; enables TLS.', helpGroup: TLS }),
  cert: Flags.string({ summary: 'Client certificate (PEM) for X.509 authentication.', helpGroup: TLS }),
  key: Flags.string({ summary: 'Private key (PEM) of --cert.', helpGroup: TLS }),
  insecure: Flags.boolean({ summary: "Don't check the server certificate's host name (the chain is still checked).", helpGroup: TLS }),
  'tls-version': Flags.string({ summary: 'tlsv1.3, tlsv1.2 or tlsv1.1.', helpGroup: TLS }),
  ciphers: Flags.string({ summary: 'OpenSSL cipher list.', helpGroup: TLS }),
  'tls-use-os-certs': Flags.boolean({ summary: 'Use TLS and trust the system CAs.', helpGroup: TLS }),
  device: Flags.string({ summary: 'Connect as this registered device: client id, user name, fresh SAS and TLS with the hub CA, from the home.', helpGroup: IOT }),
  module: Flags.string({ summary: 'Connect as this module of --device.', helpGroup: IOT }),
  duration: Flags.integer({ aliases: ['du'], summary: 'Lifetime of the --device SAS token in seconds.', default: 3600, min: 1, helpGroup: IOT }),
}

export const pubFlags = {
  ...connectionFlags,
  topic: Flags.string({ char: 't', summary: 'Topic to publish to (no wildcards).' }),
  message: Flags.string({ char: 'm', summary: 'Message payload.' }),
  file: Flags.string({ char: 'f', summary: 'Send the contents of a file as the message.' }),
  'stdin-line': Flags.boolean({ char: 'l', summary: 'Send each line of stdin as a separate message.' }),
  'stdin-file': Flags.boolean({ char: 's', summary: 'Send all of stdin as one message.' }),
  'null-message': Flags.boolean({ char: 'n', summary: 'Send a zero-length message.' }),
  qos: Flags.integer({ char: 'q', summary: 'QoS 0, 1 or 2 (default 0).' }),
  retain: Flags.boolean({ char: 'r', summary: 'Retain the message.' }),
  props: Flags.string({
    summary: "Properties 'k=v&k2=v2': MQTT 5 user properties with -V 5, else the IoT Hub property bag of a telemetry topic.",
    helpGroup: IOT,
  }),
  repeat: Flags.integer({ summary: 'Publish the message N times (-m, -f, -s, -n).' }),
  'repeat-delay': Flags.string({ summary: 'Seconds between repeats (decimals allowed).' }),
}

export const subFlags = {
  ...connectionFlags,
  topic: Flags.string({ char: 't', multiple: true, summary: 'Topic filter to subscribe to (repeatable).' }),
  qos: Flags.integer({ char: 'q', summary: 'Subscription QoS 0, 1 or 2 (default 0).' }),
  count: Flags.integer({ char: 'C', summary: 'Exit after printing this many messages.' }),
  timeout: Flags.integer({ char: 'W', summary: 'Give up after this many seconds (exit 4).' }),
  verbose: Flags.boolean({ char: 'v', summary: 'Print "topic payload".' }),
  format: Flags.string({ char: 'F', summary: 'mosquitto_sub output format: %t topic, %p payload, %q qos, %r retain, %l length, %m mid, %x/%X hex, %I/%U time, %j JSON, \\n \\t, @strftime.' }),
  'no-eol': Flags.boolean({ char: 'N', summary: "Don't add a newline after each message." }),
  'no-retained': Flags.boolean({ char: 'R', summary: "Don't print stale (retained) messages." }),
  'retained-only': Flags.boolean({ summary: 'Print only retained messages; exit at the first live one.' }),
  'remove-retained': Flags.boolean({ summary: 'Clear every retained message received (-T filters still apply).' }),
  'filter-out': Flags.string({ char: 'T', multiple: true, summary: "Don't print messages on topics matching this filter (repeatable)." }),
  'exit-after-subscribe': Flags.boolean({ char: 'E', summary: 'Exit once the broker acknowledged the subscriptions.' }),
  pretty: Flags.boolean({ summary: 'Indent the JSON of -F %j / %J.' }),
}
