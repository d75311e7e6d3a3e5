/**
 * The command surface of the CLI — every command id, alias, argument and flag — read from the
 * oclif manifest (`npm run build` writes oclif.manifest.json), kept as a JSON snapshot that
 * test/unit/command-surface.test.ts compares against, and rendered as README's command reference.
 *
 *   npm run surface:update     → rebuild, rewrite the snapshot and README's sections (the command
 *                                reference, and the az coverage table of scripts/az-coverage.ts)
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

import { REPO_ROOT } from '../test/helpers/paths.js'

import { AZ_END, AZ_START, azCoverage, azTableOf, readAzCommands } from './az-coverage.js'

export const MANIFEST = join(REPO_ROOT, 'oclif.manifest.json')
export const SNAPSHOT = join(REPO_ROOT, 'test', 'fixtures-local', 'command-surface.json')
export const README = join(REPO_ROOT, 'README.md')
export const START = '<!-- commands:start -->'
export const END = '<!-- commands:end -->'

export interface FlagSurface {
  name: string
  char?: string
  type: 'boolean' | 'option'
  required: boolean
  multiple: boolean
  default?: unknown
  aliases?: string[]
  options?: string[]
  allowNo?: boolean
  global?: boolean
}

export interface CommandSurface {
  id: string
  aliases: string[]
  args: { name: string; required: boolean }[]
  flags: FlagSurface[]
}

interface ManifestFlag {
  name: string
  char?: string
  type: 'boolean' | 'option'
  required?: boolean
  multiple?: boolean
  default?: unknown
  aliases?: string[]
  options?: string[]
  allowNo?: boolean
  helpGroup?: string
}
interface ManifestCommand {
  id: string
  aliases?: string[]
  args?: Record<string, { name: string; required?: boolean }>
  flags?: Record<string, ManifestFlag>
}

const sortedIf = (xs: string[] | undefined) => (xs && xs.length > 0 ? [...xs].sort() : undefined)

/** The surface of every command, sorted by id; flags sorted by name (argument order kept). */
export function surfaceOf(manifest: { commands: Record<string, ManifestCommand> }): CommandSurface[] {
  return Object.values(manifest.commands)
    .map((c) => ({
      id: c.id.replaceAll(':', ' '),
      aliases: (c.aliases ?? []).map((a) => a.replaceAll(':', ' ')).sort(),
      args: Object.values(c.args ?? {}).map((a) => ({ name: a.name, required: a.required === true })),
      flags: Object.values(c.flags ?? {})
        .map((f) => {
          const flag: FlagSurface = { name: f.name, type: f.type, required: f.required === true, multiple: f.multiple === true }
          if (f.char !== undefined) flag.char = f.char
          if (f.default !== undefined) flag.default = f.default
          if (sortedIf(f.aliases)) flag.aliases = sortedIf(f.aliases)
          if (f.options && f.options.length > 0) flag.options = [...f.options]
          if (f.allowNo) flag.allowNo = true
          if (f.helpGroup === 'GLOBAL') flag.global = true
          return flag
        })
        .sort((a, b) => a.name.localeCompare(b.name)),
    }))
    .sort((a, b) => a.id.localeCompare(b.id))
}

export function readManifestSurface(): CommandSurface[] {
  return surfaceOf(JSON.parse(readFileSync(MANIFEST, 'utf8')) as { commands: Record<string, ManifestCommand> })
}

export function readSnapshot(): CommandSurface[] {
  return JSON.parse(readFileSync(SNAPSHOT, 'utf8')) as CommandSurface[]
}

export function snapshotText(surface: CommandSurface[]): string {
  return JSON.stringify(surface, null, 2) + '\n'
}

function flagText(f: FlagSurface): string {
  let s = f.char ? `-${f.char}, --${f.name}` : `--${f.name}`
  if (f.allowNo) s = s.replace(`--${f.name}`, `--[no-]${f.name}`)
  if (f.type === 'option') s += f.options ? ` <${f.options.join('|')}>` : ' <value>'
  s = `\`${s}\``
  const notes: string[] = []
  if (f.required) notes.push('required')
  if (f.multiple) notes.push('repeatable')
  if (f.default !== undefined && f.default !== false) notes.push(`default ${JSON.stringify(f.default)}`)
  if (f.aliases) notes.push(`alias ${f.aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`)).join(', ')}`)
  return notes.length > 0 ? `${s} (${notes.join('; ')})` : s
}

/** README's command reference (between the markers), generated from the surface. */
export function referenceOf(surface: CommandSurface[]): string {
  const globals = surface[0]?.flags.filter((f) => f.global) ?? []
  const lines = [
    `Generated from \`test/fixtures-local/command-surface.json\` by \`npm run surface:update\`; do not edit by hand.`,
    `Every command also takes ${globals.map(flagText).join(', ')}.`,
    '',
  ]
  for (const c of surface) {
    const args = c.args.map((a) => (a.required ? `<${a.name}>` : `[${a.name}]`)).join(' ')
    lines.push(`- \`edgemq ${c.id}${args ? ' ' + args : ''}\``)
    if (c.aliases.length > 0) lines.push(`  - aliases: ${c.aliases.map((a) => `\`edgemq ${a}\``).join(', ')}`)
    const own = c.flags.filter((f) => !f.global)
    if (own.length > 0) lines.push(`  - flags: ${own.map(flagText).join(', ')}`)
  }
  return lines.join('\n') + '\n'
}

/** `readme` with the text between `start` and `end` (default: the command reference's markers) replaced by `text`. */
export function withReference(readme: string, text: string, start = START, end = END): string {
  const i = readme.indexOf(start)
  const j = readme.indexOf(end)
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} … ${end} section`)
  return readme.slice(0, i + start.length) + '\n' + text + readme.slice(j)
}

/** The README section currently between `start` and `end` (default: the command reference's markers). */
export function readmeReference(readme: string, start = START, end = END): string {
  const i = readme.indexOf(start)
  const j = readme.indexOf(end)
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} … ${end} section`)
  return readme.slice(i + start.length + 1, j)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv.includes('--update')) {
  const surface = readManifestSurface()
  writeFileSync(SNAPSHOT, snapshotText(surface))
  const readme = withReference(readFileSync(README, 'utf8'), referenceOf(surface))
  writeFileSync(README, withReference(readme, azTableOf(azCoverage(surface, readAzCommands())), AZ_START, AZ_END))
  console.log(`command surface: ${surface.length} commands → ${SNAPSHOT} and README.md (command reference, az coverage)`)
}
