import { ClientCommand } from '../client/command.js'
import { pubFlags } from '../client/flags.js'
import { parsePubOptions, parseSeconds } from '../client/options.js'
import { runPub } from '../client/pub.js'

export default class Pub extends ClientCommand<typeof Pub> {
  static summary = 'Publish a message, mosquitto_pub style (same flags, same exit codes).'
  static description = `Flags mean what they mean to mosquitto_pub: -t topic, -m/-f/-l/-s/-n message source (exactly one), -q, -r, -h, -p, -i, -u, -P, -V, -c, -k, --cafile, --cert/--key, --insecure, -d. Help is --help only (-h is the host).

--device <d> [--module <m>] connects as that registered identity: client id, IoT Hub user name, a fresh SAS as password and TLS with the hub CA on the running broker's TLS port (from the home). Explicit -h/-p/-i/-u/-P win over these values; -p <the plain port> connects without TLS.

--props 'k=v&k2=v2': with -V mqttv5 the pairs are MQTT 5 user properties; with MQTT 3.1.1 they are appended to an IoT Hub telemetry topic (devices/<d>/messages/events/) as its URL-encoded property bag — any other topic is an error.

Exit codes: 0 published (and acknowledged for QoS 1/2), 1 usage error or connection refused (mosquitto's "Connection error: …" sentence), 3 broker not reachable.`
  static examples = [
    '<%= config.bin %> pub -h 127.0.0.1 -p 1883 -V mqttv311 -i pub_client -u "edgemq.azure-devices.net/pub_client/?api-version=2018-06-30" -P "$(edgemq sas --device pub_client --raw)" -t "test_topic" -m "hello"',
    '<%= config.bin %> pub --device pub_client -t test_topic -m hello -q 1',
    '<%= config.bin %> pub --device sensor -t devices/sensor/messages/events/ -m \'{"t":21}\' --props \'alert=high\'',
    'seq 3 | <%= config.bin %> pub -t numbers -l',
  ]
  static flags = pubFlags

  async run(): Promise<void> {
    const f = this.flags
    const opts = parsePubOptions({ ...f, 'repeat-delay': parseSeconds(f['repeat-delay'], '--repeat-delay') })
    const { options, open } = await this.connectOptions(opts.connection, 'pub', f.duration)
    await runPub(opts, options, { stdin: process.stdin, log: this.debugLine }, open)
  }
}
