/** Flags shared across commands, with az's names as aliases (PRODUCT.md az parity). */
import { Args, Flags } from '@oclif/core'

import { UsageError } from '../errors.js'

export const hubNameFlag = Flags.string({ char: 'n', aliases: ['hub-name'], summary: 'IoT Hub name (must be the local hub; az parity).' })

/**
 * az's IoT Hub identifier flags: `-n/--hub-name`, `-l/--login` (the hub's connection string; both are
 * checked against the local hub by BaseCommand.checkHubName), `-g/--resource-group` and `--auth-type`
 * (accepted and ignored: there is no Azure resource to look up).
 */
export const hubTargetFlags = {
  'hub-name': hubNameFlag,
  login: Flags.string({ char: 'l', summary: "The hub's connection string (az --login): must be this hub's, with one of its policy keys." }),
  'resource-group': Flags.string({ char: 'g', summary: 'Resource group (accepted for az parity, ignored).' }),
  'auth-type': Flags.option({ options: ['key', 'login'] as const, summary: 'Accepted for az parity (edgemq uses the hub\'s policy keys).' })(),
}

/** -d/--device (az: --device-id), with a command's own summary. */
export const deviceFlagWith = (summary: string) => Flags.string({ char: 'd', aliases: ['device-id'], summary })
/** -m/--module (az: --module-id), with a command's own summary. */
export const moduleFlagWith = (summary: string) => Flags.string({ char: 'm', aliases: ['module-id'], summary })
export const deviceFlag = deviceFlagWith('Device id (az: -d/--device-id).')
export const moduleFlag = moduleFlagWith('Module id (az: -m/--module-id).')

export const deviceArg = Args.string({ description: 'Device id (or -d/--device-id).', required: false })
export const moduleArg = Args.string({ description: 'Module id (or -m/--module-id).', required: false })

/** Accepts the id either positionally (edgemq style) or by flag (az style). */
export function pick(kind: string, arg: string | undefined, flag: string | undefined, flagName: string): string {
  if (arg && flag && arg !== flag) throw new UsageError(`${kind} id given twice ("${arg}" and ${flagName} "${flag}")`)
  const v = arg ?? flag
  if (!v) throw new UsageError(`missing ${kind} id`, `pass it as an argument or with ${flagName}`)
  return v
}

export const durationFlag = Flags.integer({ aliases: ['du'], summary: 'Token lifetime in seconds.', default: 3600, min: 1 })
export const keyTypeFlag = Flags.option({ aliases: ['kt'], options: ['primary', 'secondary'] as const, default: 'primary', summary: 'Which key signs.' })()
/** az's bulk `renew-key --no-progress`: accepted (edgemq draws no progress bar). */
export const noProgressFlag = Flags.boolean({ summary: 'Accepted for az parity (edgemq shows no progress bar).' })
/** az's device-side auth flags of send-d2c-message and simulate: `--key` signs instead of the registry's key; `--model-id` announces a PnP model. */
export const deviceAuthFlags = {
  'symmetric-key': Flags.string({ aliases: ['key'], summary: 'Sign the device\'s SAS token with this key instead of the registry\'s (az --key; a wrong key is refused at connect).' }),
  'model-id': Flags.string({ aliases: ['dtmi'], summary: 'IoT Plug and Play model id announced at connect (az --dtmi); monitor prints it as the interface.' }),
}

/** az generic update's `--force-string` on identities: accepted (the settable identity properties are strings or true/false already). */
export const identityForceStringFlag = Flags.boolean({ summary: 'Accepted for az parity: the --set values of an identity are taken as they are.' })

/** az's `--yes/-y` (skip prompts): accepted; edgemq never prompts. */
export const yesFlag = Flags.boolean({ char: 'y', summary: 'Accepted for az parity (no prompts here).' })
/** az's `--repair/-r` (reinstall az's uamqp dependency): accepted, nothing to repair. */
export const repairFlag = Flags.boolean({ char: 'r', summary: 'Accepted for az parity (edgemq has no uamqp to reinstall).' })
/** az's `--top` on lists (-1 = all). */
export const topFlag = Flags.integer({ summary: 'At most this many (az --top; -1 = all).', min: -1 })

/** The first `top` of `rows` (undefined or -1: all). */
export function topOf<T>(rows: T[], top: number | undefined): T[] {
  return top === undefined || top < 0 ? rows : rows.slice(0, top)
}

/** az's `--custom-labels k1=v1 k2="v 2"` / `--custom-metric-queries m1="SELECT …"`: space separated key=value pairs. */
export function keyValuePairs(values: string[] | undefined, what: string): Record<string, string> | undefined {
  if (values === undefined) return undefined
  const out: Record<string, string> = {}
  for (const pair of values) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`${what} "${pair}" is not key=value`)
    Object.defineProperty(out, pair.slice(0, eq), { value: pair.slice(eq + 1).replace(/^"(.*)"$/, '$1'), enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** `-d/--deployment-id` of `edge deployment show/update/delete/show-metric`. */
export const deploymentIdFlag = Flags.string({ char: 'd', summary: 'Deployment id.', required: true })
