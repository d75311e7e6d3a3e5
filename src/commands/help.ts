import { Args, loadHelpClass } from '@oclif/core'

import { BaseCommand } from '../cli/base.js'
import { unknownCommandLines } from '../cli/suggest.js'

export default class HelpCommand extends BaseCommand<typeof HelpCommand> {
  static summary = 'Show help for edgemq, a topic or a command (same as --help).'
  static examples = ['<%= config.bin %> help', '<%= config.bin %> help device create', '<%= config.bin %> help hub device-identity']
  static strict = false
  static args = { command: Args.string({ description: 'The command or topic, in words (e.g. "device create").', required: false }) }

  async run(): Promise<void> {
    const words = this.argv.filter((a) => !a.startsWith('-'))
    const id = words.join(':')
    if (id && !this.config.findCommand(id) && !this.config.findTopic(id)) {
      const known = [...this.config.commandIDs, ...this.config.topics.map((t) => t.name)]
      for (const line of unknownCommandLines(words, known, this.config.bin)) this.logToStderr(line)
      this.exit(2)
    }
    const Help = await loadHelpClass(this.config)
    await new Help(this.config, this.config.pjson.oclif.helpOptions ?? this.config.pjson.helpOptions).showHelp(words)
  }
}
