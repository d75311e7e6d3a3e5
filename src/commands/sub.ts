import { ClientCommand } from '../client/command.js'
import { subFlags } from '../client/flags.js'
import { parseSubOptions } from '../client/options.js'
import { runSub } from '../client/sub.js'

export default class Sub extends ClientCommand<typeof Sub> {
  static summary = 'Subscribe and print messages, mosquitto_sub style (same flags, same output).'
  static description = `Output is byte-for-byte mosquitto_sub's: the payload per line by default, "topic payload" with -v, or the -F format (%t %p %q %r %l %m %x %X %I %U %j %P …, \\n \\t escapes, @ strftime). stdout carries only messages; -d writes connection info and packets to stderr. Help is --help only (-h is the host).

--device <d> [--module <m>] connects as that registered identity: client id, IoT Hub user name, a fresh SAS as password and TLS with the hub CA on the running broker's TLS port (from the home). Explicit -h/-p/-i/-u/-P win over these values.

Exit codes: 0 done (-C count reached, -E subscribed, --retained-only finished, Ctrl-C), 1 usage error, connection refused (mosquitto's "Connection error: …" sentence) or every subscription denied, 3 broker not reachable, 4 the -W timeout ran out (mosquitto exits 27 there).`
  static examples = [
    '<%= config.bin %> sub -h 127.0.0.1 -p 1883 -V mqttv311 -i sub_client -u "edgemq.azure-devices.net/sub_client/?api-version=2018-06-30" -P "$(edgemq sas --device sub_client --raw)" -t "test_topic"',
    '<%= config.bin %> sub --device sub_client -t test_topic -C 1 -v',
    '<%= config.bin %> sub -t "sensors/#" -F "%I %t %p" -W 10',
    '<%= config.bin %> sub --device edge-gateway --module filter -t \'$iothub/methods/POST/#\' -v',
  ]
  static flags = subFlags

  async run(): Promise<void> {
    const opts = parseSubOptions(this.flags)
    const { options, open } = await this.connectOptions(opts.connection, 'sub', this.flags.duration)
    await runSub(opts, options, { write: this.writeOut, log: this.debugLine }, open)
  }
}
