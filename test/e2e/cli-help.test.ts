/**
 * Every command documents itself (issue 3: "--help on every command has at least one example";
 * STYLE.md: every command has summary, description, examples). Enumerated from oclif's own view
 * of the package, so a new command is covered without touching this file.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { stripVTControlCharacters } from 'node:util'

import { Config, Help, type Interfaces } from '@oclif/core'

type Topic = Interfaces.Topic

import { REPO_ROOT, runCli } from '../helpers/cli.js'

/**
 * oclif's own help, rendered in this process for `argv` (the same `Help.showHelp` the binary runs on
 * `--help`, with the same Config), so checking every command does not cost a CLI start-up each.
 * The tests below still run the binary for a sample, which covers the wiring of `--help` itself.
 */
class CapturedHelp extends Help {
  readonly lines: string[] = []
  protected log(...args: string[]): void {
    this.lines.push(...args)
  }

  topicHelp(topic: Topic): Promise<void> {
    return this.showTopicHelp(topic)
  }
}

/**
 * The help `edgemq <words of id> --help` prints for a command or a topic, from the Help methods
 * oclif's showHelp() ends in once it has resolved the words (the binary runs below cover that step).
 */
async function helpOf(id: string): Promise<string> {
  // A Config of its own each time: oclif's help rewrites the ids of the command objects it lists
  // into space notation (harmless in a process that prints help once, not here).
  const config = await Config.load({ root: REPO_ROOT })
  const help = new CapturedHelp(config)
  const command = config.findCommand(id)
  const topic = config.findTopic(id)
  if (command) await help.showCommandHelp(command)
  else if (topic) await help.topicHelp(topic)
  else assert.fail(`no command or topic ${id}`)
  return stripVTControlCharacters(help.lines.join('\n'))
}

describe('help', async () => {
  const config = await Config.load({ root: REPO_ROOT })
  // oclif lists every alias as a command entry too (id = the alias); check each command once,
  // under its own id (aliases share its class, so their help is the same).
  const commands = config.commands.filter((c) => !c.hidden && !c.aliases.includes(c.id)).sort((a, b) => a.id.localeCompare(b.id))

  test('the command set is the one the issue promises (at least)', () => {
    const ids = new Set(commands.map((c) => c.id))
    for (const id of ['hub:init', 'hub:show', 'device:create', 'device:list', 'device:show', 'device:update', 'device:delete', 'module:create', 'module:list', 'module:show', 'module:delete', 'connection-string:show', 'sas', 'sas:decode', 'cert:ca', 'cert:device']) {
      assert.ok(ids.has(id), `command "${id.replace(/:/g, ' ')}" exists`)
    }
    const aliases = new Set(commands.flatMap((c) => c.aliases))
    for (const a of ['hub:device-identity:create', 'hub:device-identity:list', 'hub:device-identity:show', 'hub:device-identity:update', 'hub:device-identity:delete', 'hub:module-identity:create', 'hub:generate-sas-token', 'hub:device-identity:connection-string:show']) {
      assert.ok(aliases.has(a), `az alias "${a.replace(/:/g, ' ')}" exists`)
    }
  })

  test('every command has a summary and at least one example', () => {
    for (const c of commands) {
      assert.ok(c.summary || c.description, `${c.id} has a summary`)
      assert.ok((c.examples ?? []).length >= 1, `${c.id} has at least one example`)
    }
  })

  test('`<command> --help` prints EXAMPLES for every command', async () => {
    // `edgemq help --help` is oclif's root help (its help subject skips the word "help"), tested below.
    for (const c of commands.filter((x) => x.id !== 'help')) {
      const text = await helpOf(c.id)
      assert.match(text, /^EXAMPLES$/m, `${c.id} --help shows examples`)
      assert.match(text, /^USAGE$/m, `${c.id} --help shows usage`)
    }
    // The binary itself, for one command: exit 0 and the same text on stdout.
    const r = await runCli(['device', 'create', '--help'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), (await helpOf('device:create')).trim())
  })

  test('az aliases have help too', async () => {
    const r = await runCli(['hub', 'device-identity', 'create', '--help'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^EXAMPLES$/m)
    assert.match(r.stdout, /--device-id/)
  })

  test('`edgemq --help` lists the topics', async () => {
    const r = await runCli(['--help'])
    assert.equal(r.code, 0, r.stderr)
    const topics = r.stdout.split(/^TOPICS$/m)[1]?.split(/^COMMANDS$/m)[0] ?? ''
    const expected = new Set(commands.filter((c) => c.id.includes(':')).map((c) => c.id.split(':')[0]))
    for (const t of ['hub', 'device', 'module', 'connection-string', 'sas', 'cert']) expected.add(t)
    for (const t of expected) assert.match(topics, new RegExp(`^  ${t}\\s`, 'm'), `topic "${t}" listed`)
  })

  // issue 17: CLI discoverability
  test('`edgemq help` and `edgemq help <command words>` print the help', async () => {
    const root = await runCli(['help'])
    assert.equal(root.code, 0, root.stderr)
    assert.match(root.stdout, /^TOPICS$/m)
    const cmd = await runCli(['help', 'device', 'create'])
    assert.equal(cmd.code, 0, cmd.stderr)
    assert.match(cmd.stdout, /\$ edgemq device create/)
    const bad = await runCli(['help', 'devce'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /did you mean device\?/)
  })

  test('`edgemq version` prints the version as JSON (like `az version`)', async () => {
    const r = await runCli(['version'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { edgemq: string }).edgemq, config.version)
  })

  test('every az alias prefix is a topic with help (`edgemq hub device-identity --help`)', async () => {
    const prefixes = new Set<string>()
    for (const c of config.commands) for (const a of c.aliases) {
      const words = a.split(':')
      for (let k = 1; k < words.length; k++) prefixes.add(words.slice(0, k).join(':'))
    }
    const commandIds = new Set(config.commands.map((c) => c.id))
    const topics = [...prefixes].filter((p) => !commandIds.has(p)).sort()
    assert.ok(topics.includes('hub:device-identity'))
    for (const t of topics) assert.match(await helpOf(t), /^COMMANDS$|^TOPICS$/m, `${t.replace(/:/g, ' ')} --help lists its commands`)
    const r = await runCli(['hub', 'device-identity', '--help'])
    assert.equal(r.code, 0, r.stderr)
    const di = r.stdout
    for (const verb of ['create', 'list', 'show', 'update', 'delete']) assert.match(di, new RegExp(`hub device-identity ${verb}`))
  })

  test('a typo names the closest command in space notation and exits 2', async () => {
    const r = await runCli(['devce', 'list'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /"edgemq devce list" is not a command/)
    assert.match(r.stderr, /did you mean device list\?/)
    assert.doesNotMatch(r.stderr, /devce:list/)
    const none = await runCli(['xyzzy'])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /edgemq --help/)
  })
})
