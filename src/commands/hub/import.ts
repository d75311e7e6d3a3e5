import { Args } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { importHub } from '../../registry/export.js'
import { parseImportFile } from '../../service/broker-process.js'

export default class HubImport extends BaseCommand<typeof HubImport> {
  static summary = 'Import devices, modules, twins and the $edgeHub document from `hub export` (or `az iot hub device-identity list`).'
  static description =
    'Accepts the file `edgemq hub export` writes (with keys), or the JSON array `az iot hub device-identity list` prints (twins: thumbprints, status, edge capability, parents via deviceScope/parentScopes, tags and desired properties, but no keys: SAS devices get new keys, with a warning). Existing devices are updated; nothing is deleted. A running broker picks the changes up within a second.'
  static examples = [
    '<%= config.bin %> hub import fixture.json',
    'az iot hub device-identity list -n myhub > devices.json && <%= config.bin %> hub import devices.json',
    'cat fixture.json | <%= config.bin %> hub import -',
  ]
  static args = { file: Args.string({ description: 'JSON file, or - for stdin.', required: true }) }

  async run(): Promise<void> {
    const doc = parseImportFile(this.args.file)
    const result = await importHub(await this.hub(), doc)
    for (const w of result.warnings) this.logToStderr(`warning: ${w}`)
    this.print(result)
  }
}
