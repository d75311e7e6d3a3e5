import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { exportHub, exportHubToFile, exportJson } from '../../registry/export.js'

export default class HubExport extends BaseCommand<typeof HubExport> {
  static summary = 'Export the registry, twins and the $edgeHub document as one JSON file (a test fixture).'
  static description =
    'Devices (with keys, thumbprints, status, parents, tags, desired and reported properties), their modules and module twins, and the $edgeHub desired document. Load it into another home with `hub import`. The file holds secrets (keys): it is written mode 0600.'
  static examples = ['<%= config.bin %> hub export > fixture.json', '<%= config.bin %> hub export --file fixture.json', '<%= config.bin %> hub import fixture.json --home ./other']
  static flags = {
    file: Flags.string({ char: 'f', summary: 'Write to this file (0600) instead of stdout.' }),
  }

  async run(): Promise<void> {
    const ctx = await this.hub()
    if (this.flags.file) this.print(await exportHubToFile(ctx, this.flags.file))
    else process.stdout.write(exportJson(await exportHub(ctx)))
  }
}
