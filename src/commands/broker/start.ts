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
  ]
  static flags = {
    host: Flags.string({ summary: 'Address to listen on.', default: '127.0.0.1' }),
    port: Flags.integer({ char: 'p', summary: 'Plain MQTT port (0 = free port).', default: 1883, min: 0, max: 65535 }),
    'tls-port': Flags.integer({ summary: 'MQTT over TLS port (0 = free port).', default: 8883, min: 0, max: 65535 }),
    plain: Flags.boolean({ summary: 'Serve plain MQTT (--no-plain to disable).', default: true, allowNo: true }),
    tls: Flags.boolean({ summary: 'Serve MQTT over TLS (--no-tls to disable).', default: true, allowNo: true }),
    'control-port': Flags.integer({ summary: 'Loopback control API port (0 = free port).', default: 0, min: 0, max: 65535 }),
    daemon: Flags.boolean({ summary: 'Run in the background; logs go to <home>/broker.log.' }),
    'in-memory': Flags.boolean({ summary: 'Keep nothing on disk (registry and sessions in memory).' }),
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
      logLevel: f['log-level'] ?? 'info',
      clockSkewSecs: f['clock-skew'],
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
