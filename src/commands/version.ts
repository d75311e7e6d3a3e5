import { BaseCommand } from '../cli/base.js'

export default class Version extends BaseCommand<typeof Version> {
  static summary = 'Print the edgemq version, Node.js version and platform (like `az version`; `--version` prints one line).'
  static examples = ['<%= config.bin %> version', '<%= config.bin %> version -o tsv']

  async run(): Promise<void> {
    this.print({ edgemq: this.config.version, node: process.version, platform: `${this.config.platform}-${this.config.arch}` })
  }
}
