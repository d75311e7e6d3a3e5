import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { exportHub } from '../../registry/export.js'
import { writeFileAtomicSync } from '../../util/fs.js'

export default class HubExport extends BaseCommand<typeof HubExport> {
  static summary = 'Export the registry, twins and the $edgeHub document as one JSON file (a test fixture).'
  static description =
    'Devices (with keys, thumbprints, status, parents, tags, desired and reported properties), their modules and module twins, and the $edgeHub desired document. Load it into another home with `hub import`. The file holds secrets (keys): it is written mode 0600.'
  static examples = ['<%= config.bin %> hub export > fixture.json', '<%= config.bin %> hub export --file fixture.json', '<%= config.bin %> hub import fixture.json --home ./other']
  static flags = {
    file: Flags.string({ char: 'f', summary: 'Write to this file (0600) instead of stdout.' }),
  }

  async run(): Promise<void> {
    const doc = await exportHub(await this.hub())
    const text = JSON.stringify(doc, null, 2) + '\n'
    if (!this.flags.file) {
      process.stdout.write(text)
      return
    }
    writeFileAtomicSync(this.flags.file, text, 0o600)
    this.print({ file: this.flags.file, devices: doc.devices.length })
  }
}
