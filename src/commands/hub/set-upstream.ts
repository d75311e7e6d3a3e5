import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { parseUpstreamConnectionString } from '../../bridge/upstream.js'
import { installUpstreamCa } from '../../config/home.js'
import { NotFoundError } from '../../errors.js'

export default class HubSetUpstream extends BaseCommand<typeof HubSetUpstream> {
  static summary = 'Name the parent broker that $upstream means (nested edge): bridges and routed telemetry go there.'
  static description =
    'The connection string is the child edge device\'s identity on the parent hub (create it there with `edgemq device create <id> --edge`). A running broker connects within a second. --clear removes the parent.'
  static examples = [
    '<%= config.bin %> hub set-upstream --connection-string "$(edgemq connection-string show --home parent --device child-edge --gateway localhost -o tsv)" --port 8883 --ca parent/pki/ca.pem',
    '<%= config.bin %> hub set-upstream --clear',
  ]
  static flags = {
    'connection-string': Flags.string({ aliases: ['cs', 'login'], summary: 'HostName=…;DeviceId=<child edge>;SharedAccessKey=…;GatewayHostName=<parent host>' }),
    port: Flags.integer({ summary: 'Parent MQTT-over-TLS port.', default: 8883, min: 1, max: 65535 }),
    ca: Flags.string({ summary: 'PEM of the parent hub\'s root CA (copied into this home).' }),
    clear: Flags.boolean({ summary: 'Remove the parent.' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    const ctx = await this.hub()
    if (f.clear) {
      await ctx.registry.setUpstream(null)
      this.print({ upstream: null })
      return
    }
    if (!f['connection-string']) throw new NotFoundError('missing --connection-string', 'pass the child edge device\'s connection string on the parent, or --clear')
    const upstream = parseUpstreamConnectionString(f['connection-string'], { port: f.port, caFile: f.ca ? installUpstreamCa(ctx.paths, f.ca) : undefined })
    await ctx.registry.setUpstream(upstream)
    this.print({ upstream: { hostName: upstream.hostName, gatewayHostName: upstream.gatewayHostName, deviceId: upstream.deviceId, port: upstream.port, caFile: upstream.caFile ?? null } })
  }
}
