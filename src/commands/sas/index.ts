import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, durationFlag, hubTargetFlags, keyTypeFlag, moduleFlag } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'
import { buildSasToken, sasFromConnectionString } from '../../sas/index.js'
import { validateKey } from '../../registry/validate.js'

export default class Sas extends BaseCommand<typeof Sas> {
  static summary = 'Generate a SAS token for a device, module, service policy or any resource.'
  static description =
    'Prints {"sas": "SharedAccessSignature sr=…&sig=…&se=…"} like az; --raw prints the token alone (for -P "$(…)"). Alias: `edgemq hub generate-sas-token`.'
  static aliases = ['hub:generate-sas-token']
  static examples = [
    '<%= config.bin %> sas --device sub_client --raw',
    '<%= config.bin %> hub generate-sas-token -n edgemq -d sub_client --key-type primary --du 3600',
    '<%= config.bin %> sas --device edge-gateway --module filter',
    '<%= config.bin %> hub generate-sas-token --cs "HostName=edgemq.azure-devices.net;DeviceId=d1;SharedAccessKey=…"',
    '<%= config.bin %> sas --resource myhub.azure-devices.net/devices/dev1 --key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    duration: durationFlag,
    'key-type': keyTypeFlag,
    policy: Flags.string({ aliases: ['pn', 'policy-name'], summary: 'Service policy name (a service token when no --device).' }),
    resource: Flags.string({ summary: 'Sign this resource URI with --key (no registry needed).' }),
    key: Flags.string({ summary: 'Base64 key for --resource.' }),
    expiry: Flags.integer({ summary: 'Absolute expiry, unix seconds (instead of --duration).' }),
    raw: Flags.boolean({ summary: 'Print the token alone.' }),
    'connection-string': Flags.string({ aliases: ['cs'], summary: 'Sign for this hub, device or module connection string with its key (az --cs; no registry needed).' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    let sas: string
    if (f['connection-string']) {
      sas = sasFromConnectionString(f['connection-string'], { durationSecs: f.duration, expiry: f.expiry })
    } else if (f.resource || f.key) {
      if (!f.resource || !f.key) throw new UsageError('--resource and --key go together')
      validateKey(f.key, 'given')
      sas = buildSasToken({ resource: f.resource, key: f.key, durationSecs: f.duration, expiry: f.expiry, policyName: f.policy })
    } else {
      await this.checkHubName(f['hub-name'])
      const { registry } = await this.hub()
      if (f.device) {
        sas = await registry.sasToken(f.device, f.module, { durationSecs: f.duration, expiry: f.expiry, keyType: f['key-type'] })
      } else {
        if (f.module) throw new UsageError('--module needs --device')
        sas = registry.serviceSasToken({ policy: f.policy, durationSecs: f.duration, expiry: f.expiry, keyType: f['key-type'] })
      }
    }
    if (f.raw || f.output === 'tsv') this.log(sas)
    else this.print({ sas })
  }
}
