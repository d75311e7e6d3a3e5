import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { runBrokerForeground, startBrokerDaemon } from '../../service/broker-process.js'

/**
 * The user's argv for the daemon child, minus --daemon and the flags startBrokerDaemon appends
 * itself (--home, -o/--output): oclif refuses a flag given twice, so `broker start --home h
 * --daemon` (or `-o json --daemon`) made the child exit at once.
 */
export function daemonArgv(argv: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--daemon') continue
    if (a === '--home' || a === '--output' || a === '-o') {
      i++ // and its value
      continue
    }
    if (a.startsWith('--home=') || a.startsWith('--output=') || (a.startsWith('-o') && !a.startsWith('--'))) continue
    out.push(a)
  }
  return out
}

export default class BrokerStart extends BaseCommand<typeof BrokerStart> {
  static summary = 'Start the edge hub MQTT broker (1883 plain, 8883 TLS) for this home.'
  static description =
    'Runs in the foreground like mosquitto (Ctrl-C stops it gracefully); --daemon runs it in the background and returns once it listens. Port 0 picks a free port; the chosen ports are printed and written to <home>/broker.json.'
  static examples = [
    '<%= config.bin %> broker start',
    '<%= config.bin %> broker start --port 0 --tls-port 0 --daemon',
    '<%= config.bin %> broker start --no-plain --log-level debug',
    '<%= config.bin %> broker start --in-memory --port 0 --tls-port 0',
    '<%= config.bin %> broker start --rest-port 443   # for the azure-iothub service SDK, and MQTT over wss (MqttWs)',
    '<%= config.bin %> broker start --ws-port 8080    # MQTT over ws://localhost:8080/$iothub/websocket',
    '<%= config.bin %> broker start --amqps-port 5671 --rest-port 443   # azure-iothub Client (C2D, feedback) over AMQP and AmqpWs',
    '<%= config.bin %> broker start --in-memory --import fixture.json --daemon',
    '<%= config.bin %> broker start --cluster redis://localhost:6379/0 --port 0 --tls-port 0',
  ]
  static flags = {
    host: Flags.string({ summary: 'Address to listen on.', default: '127.0.0.1' }),
    port: Flags.integer({ char: 'p', summary: 'Plain MQTT port (0 = free port).', default: 1883, min: 0, max: 65535 }),
    'tls-port': Flags.integer({ summary: 'MQTT over TLS port (0 = free port).', default: 8883, min: 0, max: 65535 }),
    plain: Flags.boolean({ summary: 'Serve plain MQTT (--no-plain to disable).', default: true, allowNo: true }),
    tls: Flags.boolean({ summary: 'Serve MQTT over TLS (--no-tls to disable).', default: true, allowNo: true }),
    'control-port': Flags.integer({ summary: 'Loopback control API port (0 = free port).', default: 0, min: 0, max: 65535 }),
    daemon: Flags.boolean({ summary: 'Run in the background; logs go to <home>/broker.log.' }),
    'in-memory': Flags.boolean({
      summary: 'Keep the registry, twins, sessions and PKI in memory; only <home>/broker.json (and broker.log with --daemon) is written.',
    }),
    import: Flags.string({ summary: 'Seed the registry from a `hub export` file (or an az device list) before listening.' }),
    'rest-port': Flags.integer({
      summary: 'Serve the IoT Hub service REST API (azure-iothub SDK) over HTTPS on this port (443 for the SDK; 0 = free port).',
      min: 0,
      max: 65535,
    }),
    'ws-port': Flags.integer({
      summary: 'Also serve MQTT over plain WebSockets (ws://host:port/$iothub/websocket) on this port (0 = free port); wss is on --rest-port.',
      min: 0,
      max: 65535,
    }),
    'amqps-port': Flags.integer({
      summary: 'Serve the IoT Hub service AMQP endpoint (azure-iothub Client: C2D send, feedback) over TLS on this port (5671 for the SDK; 0 = free port).',
      min: 0,
      max: 65535,
    }),
    'amqp-port': Flags.integer({ summary: 'Also serve AMQP without TLS on this port (5672 by convention; 0 = free port).', min: 0, max: 65535 }),
    cluster: Flags.string({
      summary: 'Run as one node of a cluster sharing this hub on Redis (redis://[:password@]host:port[/db]); a home made with `hub init --store` implies it.',
    }),
    'dps-assigned-hub': Flags.string({ summary: 'Host name DPS assigns devices to (kept in the hub; default localhost): the name devices reach this broker by.' }),
    'clock-skew': Flags.integer({ summary: 'SAS clock skew tolerance in seconds.', default: 300, min: 0, hidden: true }),
  }

  async run(): Promise<void> {
    const f = this.flags
    const options = {
      home: this.home,
      host: f.host,
      port: f.plain ? f.port : null,
      tlsPort: f.tls ? f['tls-port'] : null,
      controlPort: f['control-port'],
      inMemory: f['in-memory'],
      importFile: f.import,
      restPort: f['rest-port'] ?? null,
      wsPort: f['ws-port'] ?? null,
      amqpsPort: f['amqps-port'] ?? null,
      amqpPort: f['amqp-port'] ?? null,
      logLevel: f['log-level'] ?? 'info',
      clockSkewSecs: f['clock-skew'],
      cluster: f.cluster,
      ...(f['dps-assigned-hub'] ? { dpsAssignedHub: f['dps-assigned-hub'] } : {}),
      json: f.output === 'json' && !process.stdout.isTTY,
    }
    if (f.daemon) {
      const rt = await startBrokerDaemon(options, daemonArgv(process.argv.slice(2)))
      this.print({ status: 'started', pid: rt.pid, host: rt.host, ports: rt.ports, log: rt.log })
      return
    }
    await runBrokerForeground(options, (line) => this.log(line))
  }
}
