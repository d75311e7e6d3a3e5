import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { checkDecision } from '../../service/policy.js'

export default class PolicyCheck extends BaseCommand<typeof PolicyCheck> {
  static summary = 'Explain a decision: may this client connect, publish or subscribe? Prints allow/deny and the statement that decided.'
  static description = 'Uses the hub\'s $edgeHub policy, or --file. Exit 0 either way; read "decision".'
  static examples = [
    '<%= config.bin %> policy check --identity rogue_client --op connect',
    '<%= config.bin %> policy check --identity sensor_1 --op publish --topic events/alerts',
    '<%= config.bin %> policy check --identity sub_client --op subscribe --topic "test/#" --file policy.json -o json',
  ]
  static flags = {
    identity: Flags.string({ summary: 'Client id: <device> or <device>/<module>.', required: true }),
    op: Flags.string({ summary: 'connect | publish | subscribe (mqtt: prefix optional).', required: true }),
    topic: Flags.string({ summary: 'Topic (publish) or filter (subscribe).' }),
    file: Flags.string({ summary: 'Check against this policy file instead of the hub\'s.' }),
  }

  async run(): Promise<void> {
    const f = this.flags
    const d = await checkDecision(f.file ? undefined : await this.hub(), { identity: f.identity, op: f.op, topic: f.topic, file: f.file })
    if (this.flags.output === 'json') this.print(d)
    else this.log(`${d.decision.toUpperCase()}: ${d.reason}`)
  }
}
