import { Flags } from '@oclif/core'

import { BaseCommand } from '../cli/base.js'
import { deviceFlagWith, hubNameFlag, moduleFlagWith } from '../cli/flags.js'
import { TimeoutError } from '../errors.js'
import { eventFilter, HubService, monitorView, type WireEvent } from '../service/hub-service.js'

export default class Monitor extends BaseCommand<typeof Monitor> {
  static summary = 'Stream telemetry that reaches $upstream (like az iot hub monitor-events), or a module\'s outputs.'
  static description = 'Prints one JSON object per event ({"event": {"origin", "module", "properties", "payload"}}). Stops after --message-count events or --timeout seconds (0 = never). Needs a running broker.'
  static aliases = ['hub:monitor-events']
  static examples = [
    '<%= config.bin %> monitor',
    '<%= config.bin %> monitor --device sensor --props --timeout 30',
    '<%= config.bin %> hub monitor-events -d "sensor*" --message-count 5',
    '<%= config.bin %> monitor --module filter --output-name alerts',
  ]
  static flags = {
    device: deviceFlagWith('Only this device (glob: * and ?).'),
    module: moduleFlagWith('Only this module; with --output-name, shows the module\'s outputs.'),
    'output-name': Flags.string({ summary: 'Show what the module sends on this output (needs --module).' }),
    props: Flags.boolean({ aliases: ['properties'], summary: 'Include system and application properties.' }),
    timeout: Flags.integer({ aliases: ['to'], summary: 'Stop after this many seconds (0 = never).', default: 300, min: 0 }),
    'message-count': Flags.integer({ aliases: ['mc'], summary: 'Stop after this many events.', min: 1 }),
    'hub-name': hubNameFlag,
    y: Flags.boolean({ char: 'y', summary: 'Accepted for az parity (no prompts here).', hidden: true }),
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const svc = new HubService(await this.hub())
    const wanted = eventFilter({ device: f.device, module: f.module, outputName: f['output-name'] })
    const outputs = f['output-name'] !== undefined
    const ac = new AbortController()
    let seen = 0
    let timedOut = false
    const timer = f.timeout > 0 ? setTimeout(() => ((timedOut = true), ac.abort()), f.timeout * 1000) : undefined
    process.once('SIGINT', () => ac.abort())
    if (process.stderr.isTTY) this.logToStderr(`monitoring ${outputs ? `outputs of ${f.module}` : 'events on $upstream'}… (Ctrl-C to stop)`)
    await svc.streamEvents(
      outputs ? 'output' : 'event',
      (ev: WireEvent) => {
        if (!wanted(ev)) return
        if (this.debugEnabled && ev.routedTo) {
          this.logToStderr(`debug: ${ev.deviceId}/${ev.moduleId ?? ''} output "${ev.outputName ?? ''}" routed to ${ev.routedTo.length > 0 ? ev.routedTo.join(', ') : 'nothing (no route matched)'}`)
        }
        this.log(JSON.stringify(monitorView(ev, { props: f.props }), null, this.flags.output === 'json' && process.stdout.isTTY ? 2 : 0))
        if (f['message-count'] && ++seen >= f['message-count']) ac.abort()
      },
      ac.signal,
    )
    clearTimeout(timer)
    if (timedOut && f['message-count'] && seen < f['message-count']) throw new TimeoutError(`got ${seen} of ${f['message-count']} events within ${f.timeout} s`)
  }
}
