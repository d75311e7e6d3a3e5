import { Args } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { validatePolicyFile } from '../../service/policy.js'

export default class PolicyValidate extends BaseCommand<typeof PolicyValidate> {
  static summary = 'Validate an authorization policy or $edgeHub document offline (exit 2 with every error and its JSON path).'
  static examples = ['<%= config.bin %> policy validate policy.json', 'cat policy.json | <%= config.bin %> policy validate -']
  static args = { file: Args.string({ description: 'JSON file ($edgeHub document, bare desired object, or an authorizations array), or -.', required: true }) }

  async run(): Promise<void> {
    this.print(validatePolicyFile(this.args.file))
  }
}
