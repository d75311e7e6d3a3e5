import { Flags } from '@oclif/core'

import { BaseCommand } from '../cli/base.js'
import { deviceFlagWith, hubTargetFlags, moduleFlagWith, repairFlag, yesFlag } from '../cli/flags.js'
import { defaultBareValue } from '../cli/three-state.js'
import { toYaml } from '../cli/yaml.js'
import { TimeoutError } from '../errors.js'
import { eventFilter, HubService, monitorView, parseMonitorProps, type WireEvent } from '../service/hub-service.js'

export default class Monitor extends BaseCommand<typeof Monitor> {
  static summary = 'Stream telemetry that reaches $upstream (like az iot hub monitor-events), or a module\'s outputs.'
  static description =
    'Prints each event as az does ({"event": {"origin", "module", "interface", "component", "properties", "annotations", "payload"}}), indented on a terminal and one per line when piped; -o table or tsv print YAML, as az prints any output but json. ' +
    '--props sys app anno all choose the extra parts (bare --props = all). Stops after --message-count events, or after --timeout seconds without an event (0 = never). Needs a running broker.'
  static aliases = ['hub:monitor-events']
  static examples = [
    '<%= config.bin %> monitor',
    '<%= config.bin %> hub monitor-events -n edgemq -d sensor -p sys app -t 30',
    '<%= config.bin %> hub monitor-events -d "sensor*" --message-count 5 --ct application/json -y',
    '<%= config.bin %> hub monitor-events -i "dtmi:com:example:Thermostat;1" -p anno -o table',
    '<%= config.bin %> monitor --module filter --output-name alerts',
  ]
  static flags = {
    device: deviceFlagWith('Only this device (glob: * and ?).'),
    module: moduleFlagWith('Only this module; with --output-name, shows the module\'s outputs.'),
    'output-name': Flags.string({ summary: 'Show what the module sends on this output (needs --module).' }),
    props: Flags.string({ char: 'p', aliases: ['properties'], multiple: true, summary: 'sys, app, anno and/or all (az; bare --props = all).' }),
    timeout: Flags.integer({ char: 't', aliases: ['to'], summary: 'Stop after this many seconds without an event (az; 0 = never).', default: 300, min: 0 }),
    'message-count': Flags.integer({ aliases: ['mc'], summary: 'Stop after this many events.', min: 1 }),
    'enqueued-time': Flags.integer({ char: 'e', aliases: ['et'], min: 0, summary: 'Only events enqueued at or after this time (ms since the epoch; az --et).' }),
    'content-type': Flags.string({ aliases: ['ct'], summary: 'Payload content type: application/json parses it (az --ct).' }),
    'consumer-group': Flags.string({ char: 'c', aliases: ['cg'], summary: 'Accepted for az parity: every monitor here reads the one live stream.' }),
    'device-query': Flags.string({ char: 'q', summary: 'Only devices this IoT Hub query returns (az -q, evaluated at start), e.g. "SELECT deviceId FROM devices WHERE tags.site = \'lab\'".' }),
    interface: Flags.string({ char: 'i', summary: 'Only events from devices that announced this model id at connect (az -i, e.g. dtmi:com:example:Thermostat;1).' }),
    ...hubTargetFlags,
    yes: yesFlag,
    repair: repairFlag,
  }

  async init(): Promise<void> {
    this.argv = defaultBareValue(this.argv, ['--props', '--properties', '-p'], 'all')
    await super.init()
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const props = parseMonitorProps(f.props ?? [])
    const svc = new HubService(await this.hub())
    const devices = f['device-query'] === undefined ? undefined : await svc.deviceIdsOf(f['device-query'])
    const wanted = eventFilter({ device: f.device, devices, module: f.module, outputName: f['output-name'], interface: f.interface })
    const since = f['enqueued-time']
    const outputs = f['output-name'] !== undefined
    const indent = process.stdout.isTTY ? 4 : 0
    const ac = new AbortController()
    let seen = 0
    let timedOut = false
    let timer: NodeJS.Timeout | undefined
    // az's -t is an idle timeout: it restarts with every event.
    const arm = () => {
      clearTimeout(timer)
      if (f.timeout > 0) timer = setTimeout(() => ((timedOut = true), ac.abort()), f.timeout * 1000)
    }
    arm()
    process.once('SIGINT', () => ac.abort())
    if (process.stderr.isTTY) this.logToStderr(`monitoring ${outputs ? `outputs of ${f.module}` : 'events on $upstream'}… (Ctrl-C to stop)`)
    await svc.streamEvents(
      outputs ? 'output' : 'event',
      (ev: WireEvent) => {
        if (!wanted(ev)) return
        if (since !== undefined && Date.parse(ev.enqueuedTime) < since) return
        arm()
        if (this.debugEnabled && ev.routedTo) {
          this.logToStderr(`debug: ${ev.deviceId}/${ev.moduleId ?? ''} output "${ev.outputName ?? ''}" routed to ${ev.routedTo.length > 0 ? ev.routedTo.join(', ') : 'nothing (no route matched)'}`)
        }
        const view = monitorView(ev, { props, contentType: f['content-type'] })
        this.log(f.output === 'json' ? JSON.stringify(view, null, indent) : toYaml(view))
        if (f['message-count'] && ++seen >= f['message-count']) ac.abort()
      },
      ac.signal,
    )
    clearTimeout(timer)
    if (timedOut && f['message-count'] && seen < f['message-count']) throw new TimeoutError(`got ${seen} of ${f['message-count']} events; none came for ${f.timeout} s`)
  }
}
