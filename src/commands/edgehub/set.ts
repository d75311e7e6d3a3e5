import { Args, Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { UsageError } from '../../errors.js'
import { defaultPolicyDocument, parseEdgeHubFile, setEdgeHubDesired } from '../../service/edgehub.js'

export default class EdgehubSet extends BaseCommand<typeof EdgehubSet> {
  static summary = 'Set the $edgeHub desired properties: authorization policy, bridges, routes, store and forward.'
  static description =
    'Takes the full {"$edgeHub":{"properties.desired":{…}}} document or the bare desired object; trailing commas and comments are tolerated. Merges like a desired patch unless --replace. A running broker applies it within a second; an invalid document is refused whole (exit 2) with every error and its JSON path.'
  static examples = [
    '<%= config.bin %> edgehub set policy.json',
    '<%= config.bin %> edgehub set --default-policy',
    'cat bridge.json | <%= config.bin %> edgehub set -',
    '<%= config.bin %> edgehub set policy.json --replace',
  ]
  static args = { file: Args.string({ description: 'JSON file, or - for stdin.', required: false }) }
  static flags = {
    replace: Flags.boolean({ summary: 'Replace the whole desired document instead of merging.' }),
    'default-policy': Flags.boolean({ summary: 'Set the seed\'s default policy: every registered identity may connect.' }),
  }

  async run(): Promise<void> {
    if (!this.args.file && !this.flags['default-policy']) throw new UsageError('missing the document file', 'pass a file, - for stdin, or --default-policy')
    if (this.args.file && this.flags['default-policy']) throw new UsageError('pass either a file or --default-policy')
    const patch = this.args.file ? parseEdgeHubFile(this.args.file) : defaultPolicyDocument()
    const ctx = await this.hub()
    const r = await setEdgeHubDesired(ctx, patch, { replace: this.flags.replace })
    for (const w of r.warnings) this.logToStderr(`warning: ${w.path}: ${w.message}`)
    this.print({ deviceId: ctx.hub.edgeDeviceId, moduleId: '$edgeHub', desiredVersion: r.desiredVersion, desired: r.desired })
  }
}
