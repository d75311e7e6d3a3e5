import { Flags } from '@oclif/core'

import { BaseCommand } from '../../../cli/base.js'
import { hubTargetFlags, keyValuePairs } from '../../../cli/flags.js'
import { createEdgeDeployment } from '../../../deployment/index.js'
import { UsageError } from '../../../errors.js'
import { readDocument } from '../../../service/edgehub.js'
import { HubService, parseJsonArg } from '../../../service/hub-service.js'

/** `--labels '{"k":"v"}'` / `--metrics` (az: a JSON object of strings, or a file). */
function stringMap(value: string | undefined, what: string): Record<string, string> | undefined {
  if (value === undefined) return undefined
  const v = parseJsonArg(value, what)
  const doc = what === '--metrics' && v && typeof v === 'object' && 'queries' in v ? (v as { queries: unknown }).queries : v
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || Object.values(doc).some((x) => typeof x !== 'string')) {
    throw new UsageError(`${what} must be a JSON object of strings, e.g. '{"env":"lab"}'`)
  }
  return doc as Record<string, string>
}

export default class EdgeDeploymentCreate extends BaseCommand<typeof EdgeDeploymentCreate> {
  static summary = 'Create an IoT Edge deployment: a manifest for every edge device its target condition matches (az iot edge deployment create).'
  static description =
    'Each edge device gets the highest-priority deployment whose target condition (a WHERE over device twins, as `hub query` reads it) it matches; ties go to the newest. ' +
    'The hub\'s own edge device gets it applied as `edge set-modules` does (module identities, $edgeHub, module twins); other edge devices get their $edgeAgent/$edgeHub desired twins. ' +
    'Without --target-condition every edge device is targeted. Targets are evaluated on every create and delete.'
  static examples = [
    '<%= config.bin %> edge deployment create -d base --content deployment.json --target-condition "tags.site = \'lab\'" --priority 10',
    '<%= config.bin %> edge deployment create -d canary -k examples/deployment.json -t "deviceId = \'edge-gateway\'" --pri 20 --labels \'{"ring":"canary"}\'',
    '<%= config.bin %> edge deployment create -d lab -k examples/deployment.json --cl ring=canary site=lab --cmq reporting="SELECT deviceId FROM devices.modules WHERE moduleId = \'$edgeAgent\'"',
  ]
  static flags = {
    'deployment-id': Flags.string({ char: 'd', summary: 'Deployment id (lowercase; az: -d/--deployment-id).', required: true }),
    content: Flags.string({ char: 'k', summary: 'The deployment manifest (JSON file, @file, or - for stdin).', required: true }),
    'target-condition': Flags.string({ char: 't', aliases: ['tc'], summary: 'Which devices: a WHERE condition over device twins, e.g. "tags.site = \'lab\'".' }),
    priority: Flags.integer({ aliases: ['pri'], summary: 'Higher wins where several deployments target a device.', default: 0, min: 0 }),
    labels: Flags.string({ aliases: ['lab'], summary: 'Labels: a JSON object of strings.' }),
    metrics: Flags.string({ char: 'm', summary: 'Custom metric queries: a JSON object of strings (or {"queries": {…}}); stored, not evaluated.' }),
    'custom-labels': Flags.string({ aliases: ['cl'], multiple: true, summary: 'Labels as key=value pairs (az; instead of --labels).', exclusive: ['labels'] }),
    'custom-metric-queries': Flags.string({ aliases: ['cmq'], multiple: true, summary: 'Metric queries as name="SELECT …" pairs (az; instead of --metrics).', exclusive: ['metrics'] }),
    'no-validation': Flags.boolean({ summary: 'Accepted for az parity; edgemq still validates the manifest, since it applies it to its own edge hub.' }),
    layered: Flags.boolean({ summary: 'az: a layered deployment. Not supported by edgemq (exit 1).' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    if (f.layered) throw new UsageError('layered deployments are not supported by edgemq', 'create a full deployment (without --layered)')
    const content = readDocument(f.content)
    const ctx = await this.hub()
    const d = await createEdgeDeployment(ctx, new HubService(ctx), {
      id: f['deployment-id'],
      content,
      targetCondition: f['target-condition'],
      priority: f.priority,
      labels: stringMap(f.labels, '--labels') ?? keyValuePairs(f['custom-labels'], '--custom-labels'),
      metrics: stringMap(f.metrics, '--metrics') ?? keyValuePairs(f['custom-metric-queries'], '--custom-metric-queries'),
    })
    this.print(d)
  }
}
