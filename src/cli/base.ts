/**
 * The base every edgemq command extends: shared flags (--home, --log-level, -o), opening the
 * hub, output formatting, and the error → exit code mapping (PRODUCT.md "Exit codes").
 * Commands stay thin: parse flags, call a library module, print the result.
 */
import { Command, Flags, type Interfaces } from '@oclif/core'

import { openHub, resolveHome, type HubContext } from '../config/home.js'
import { Dps } from '../dps/index.js'
import { EdgeMqError, InvalidDocumentError } from '../errors.js'
import { checkHubTarget } from '../service/hub-target.js'
import { formatOutput, type FormatOptions, type OutputFormat } from './output.js'
import { normalizeThreeState } from './three-state.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static baseFlags = {
    home: Flags.string({ summary: 'State directory of the hub (default $EDGEMQ_HOME or ~/.edgemq).', helpGroup: 'GLOBAL' }),
    'log-level': Flags.option({ options: ['error', 'warn', 'info', 'debug'] as const, summary: 'Log verbosity.', helpGroup: 'GLOBAL' })(),
    output: Flags.option({ char: 'o', options: ['json', 'table', 'tsv'] as const, summary: 'Output format.', default: 'json', helpGroup: 'GLOBAL' })(),
  }

  protected flags!: BaseFlags<T>
  protected args!: Interfaces.InferredArgs<T['args']>
  private hubContext?: HubContext

  public async init(): Promise<void> {
    await super.init()
    this.argv = normalizeThreeState(this.argv, { ...(this.ctor.flags ?? {}) } as Parameters<typeof normalizeThreeState>[1])
    const { flags, args } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as Interfaces.InferredArgs<T['args']>
  }

  get home(): string {
    return resolveHome(this.flags.home)
  }

  get debugEnabled(): boolean {
    return this.flags['log-level'] === 'debug'
  }

  /** Opens the hub; creates the default one (and says so on stderr) when the home has none. */
  protected async hub(): Promise<HubContext> {
    if (!this.hubContext) {
      this.hubContext = await openHub({ home: this.home, createDefault: true })
      if (this.hubContext.createdHub) {
        this.logToStderr(`created hub "${this.hubContext.hub.name}" with edge device "${this.hubContext.hub.edgeDeviceId}" in ${this.home}`)
      }
    }
    return this.hubContext
  }

  /** The hub's DPS; `-l/--login` (dpsScopeFlags) must be one of its connection strings (az parity). */
  protected async dps(): Promise<Dps> {
    const dps = new Dps(await this.hub())
    const login = (this.flags as { login?: unknown }).login
    if (typeof login === 'string') dps.checkLogin(login)
    return dps
  }

  /** `-n/--hub-name` must name the local hub, and `-l/--login` (hubTargetFlags) be its connection string (az parity). */
  protected async checkHubName(name: string | undefined): Promise<void> {
    const login = (this.flags as { login?: unknown }).login
    if (!name && typeof login !== 'string') return
    const { hub } = await this.hub()
    checkHubTarget(hub, { name, login: typeof login === 'string' ? login : undefined })
  }

  protected print(data: unknown, opts: FormatOptions = {}): void {
    this.log(formatOutput(data, this.flags.output as OutputFormat, opts))
  }

  protected async finally(err: Error | undefined): Promise<void> {
    await this.hubContext?.close().catch(() => undefined)
    return super.finally(err)
  }

  /** The process exit code for a typed error (PRODUCT.md "Exit codes"); pub/sub use mosquitto's. */
  protected exitCodeFor(err: EdgeMqError): number {
    return err.exitCode
  }

  protected async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own exits (help, version, this.exit) pass through untouched.
    if (err.oclif?.exit !== undefined && !(err instanceof EdgeMqError) && err.message.startsWith('EEXIT')) throw err
    if (this.flags?.['log-level'] === 'debug' || process.env.EDGEMQ_DEBUG) this.logToStderr(err.stack ?? String(err))
    if (err instanceof EdgeMqError) {
      this.logToStderr(`error: ${err.message}`)
      if (err instanceof InvalidDocumentError) for (const i of err.issues) this.logToStderr(`  ${i.path}: ${i.message}`)
      if (err.hint) this.logToStderr(`hint: ${err.hint}`)
      this.exit(this.exitCodeFor(err))
    }
    // Flag/argument parse errors from oclif: first line only, exit 1 (usage).
    if (err.oclif?.exit !== undefined || /flag|argument/i.test(err.message)) {
      const first = err.message.split('\n').find((l) => l.trim()) ?? err.message
      this.logToStderr(`error: ${first.trim()}`)
      this.logToStderr(`hint: see \`edgemq ${this.id?.replace(/:/g, ' ') ?? ''} --help\``)
      this.exit(1)
    }
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOSPC') {
      this.logToStderr('error: the disk is full; nothing was written')
      this.exit(1)
    }
    this.logToStderr(`error: ${err.message}`)
    this.logToStderr('hint: rerun with --log-level debug for details, and report it if it looks like a bug')
    this.exit(1)
  }
}
