import { Args, Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, moduleFlag } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'
import { deviceResource } from '../../sas/index.js'
import { describeSasToken } from '../../sas/describe.js'
import { validateKey } from '../../registry/validate.js'

export default class SasDecode extends BaseCommand<typeof SasDecode> {
  static summary = 'Decode a SAS token: resource, expiry in human time, and (with a key or device) whether the signature is valid.'
  static examples = [
    '<%= config.bin %> sas decode "$(edgemq sas --device sub_client --raw)"',
    '<%= config.bin %> sas decode "SharedAccessSignature sr=…&sig=…&se=…" --device sub_client',
    '<%= config.bin %> sas decode "$TOKEN" --key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
  ]
  static args = { token: Args.string({ description: 'The token ("SharedAccessSignature sr=…").', required: true }) }
  static flags = {
    key: Flags.string({ summary: 'Check the signature with this base64 key.' }),
    device: deviceFlag,
    module: moduleFlag,
  }

  async run(): Promise<void> {
    const f = this.flags
    let keys: { primary?: string; secondary?: string } | undefined
    let expectedResource: string | undefined
    if (f.key && f.device) throw new UsageError('pass either --key or --device, not both')
    if (f.key) {
      validateKey(f.key, 'given')
      keys = { primary: f.key }
    } else if (f.device) {
      const { registry, hub } = await this.hub()
      const rec = f.module ? await registry.getModule(f.device, f.module) : await registry.getDevice(f.device)
      keys = { primary: rec.primaryKey, secondary: rec.secondaryKey }
      expectedResource = deviceResource(hub.hostName, f.device, f.module)
    }
    const d = describeSasToken(this.args.token, keys)
    if (expectedResource && d.resource.toLowerCase() !== expectedResource.toLowerCase() && !(f.module && d.resource.toLowerCase() === expectedResource.replace(/\/modules\/.*$/, '').toLowerCase())) {
      d.signature = 'invalid'
      d.reason = `token is for "${d.resource}", not "${expectedResource}"`
      delete d.signedWith
    }
    if (this.flags.output === 'json') this.print(d)
    else {
      this.log(`resource:  ${d.resource}${d.policy ? ` (policy ${d.policy})` : ''}`)
      this.log(`expiry:    ${d.expiresAt} (${d.expiryText})`)
      this.log(`signature: ${d.signature}${d.signedWith ? ` (${d.signedWith} key)` : ''}${d.reason ? ` — ${d.reason}` : ''}`)
    }
  }
}
