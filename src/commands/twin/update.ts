import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, moduleFlag, pick } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'
import { HubService, parseJsonArg } from '../../service/hub-service.js'
import { twinSetPatch } from '../../service/identity.js'

export default class TwinUpdate extends BaseCommand<typeof TwinUpdate> {
  static summary = 'Update a twin\'s desired properties and/or tags (service side).'
  static description =
    'A desired patch reaches a connected device within a second (through the running broker); with no broker it is stored and the device gets it on its next twin GET. On the edge device\'s $edgeHub module it is validated like `edgehub set`.'
  static aliases = ['hub:device-twin:update', 'hub:module-twin:update']
  static examples = [
    '<%= config.bin %> twin update --device sensor --desired \'{"interval": 5}\'',
    '<%= config.bin %> hub module-twin update -d edge-gateway -m \'$edgeHub\' --desired @policy.json',
    '<%= config.bin %> twin update -d sensor --tags \'{"site": "lab"}\' --etag AAAAAAAAAAE=',
    '<%= config.bin %> hub device-twin update -d sensor --set properties.desired.interval=5 --set tags.site=lab',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    desired: Flags.string({ summary: 'Desired patch: JSON, or @file.' }),
    tags: Flags.string({ summary: 'Tags patch: JSON, or @file.' }),
    etag: Flags.string({ char: 'e', summary: 'Only update if the twin still has this etag.' }),
    replace: Flags.boolean({ summary: 'Replace the sections instead of merging.' }),
    set: Flags.string({ multiple: true, summary: 'az generic update: tags.<path>=<value> or properties.desired.<path>=<value> (JSON value, else a string; null deletes).' }),
    'force-string': Flags.boolean({ summary: 'Keep --set values as strings (az --force-string).' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    if (f.desired === undefined && f.tags === undefined && f.set === undefined) throw new UsageError('nothing to update', 'pass --desired, --tags and/or --set')
    const ctx = await this.hub()
    const deviceId = pick('device', undefined, f.device, '-d/--device')
    const { desired, tags } = twinSetPatch(
      f.set ?? [],
      { desired: f.desired === undefined ? undefined : parseJsonArg(f.desired, '--desired'), tags: f.tags === undefined ? undefined : parseJsonArg(f.tags, '--tags') },
      { forceString: f['force-string'] },
    )
    const svc = new HubService(ctx)
    const key = f.module ? { deviceId, moduleId: f.module } : { deviceId }
    this.print(await svc.updateTwin(key, { desired, tags }, { etag: f.etag, replace: f.replace }))
  }
}
