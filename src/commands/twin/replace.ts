import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, moduleFlag, pick } from '../../cli/flags.js'
import { HubService, parseJsonArg, twinReplacement } from '../../service/hub-service.js'

export default class TwinReplace extends BaseCommand<typeof TwinReplace> {
  static summary = 'Replace a twin\'s tags and desired properties with a document (az device-twin / module-twin replace).'
  static description = 'The --json document is a twin ({"tags": …, "properties": {"desired": …}}), e.g. an edited `twin show`: sections it has replace the stored ones; $metadata/$version and read-only fields are ignored.'
  static aliases = ['hub:device-twin:replace', 'hub:module-twin:replace']
  static examples = [
    '<%= config.bin %> hub device-twin replace -d sensor -j twin.json',
    '<%= config.bin %> hub module-twin replace -d edge-gateway -m filter --json \'{"properties": {"desired": {"threshold": 30}}}\'',
    '<%= config.bin %> twin replace -d sensor -j @twin.json --etag AAAAAAAAAAI=',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    'target-json': Flags.string({ char: 'j', aliases: ['json'], required: true, summary: 'The twin (az -j/--json): JSON, a file path, or @file.' }),
    etag: Flags.string({ char: 'e', summary: 'Only while the twin still has this etag.' }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    const deviceId = pick('device', undefined, f.device, '-d/--device-id')
    const key = f.module ? { deviceId, moduleId: f.module } : { deviceId }
    const svc = new HubService(await this.hub())
    this.print(await svc.updateTwin(key, twinReplacement(parseJsonArg(f['target-json'], '--json')), { etag: f.etag, replace: true }))
  }
}
