/** `policy validate` / `policy check`: the policy engine over files and the hub's `$edgeHub` twin. */
import type { HubContext } from '../config/home.js'
import { loadPolicyDocument } from '../edgehub/index.js'
import { compilePolicy, identityFromClientId, type Decision, type Operation } from '../policy/index.js'
import { UsageError } from '../errors.js'
import { readDocument } from './edgehub.js'

/** Validates a file offline; throws InvalidDocumentError (exit 2) listing every error. */
export function validatePolicyFile(file: string): { statements: number; valid: true } {
  const policy = loadPolicyDocument(readDocument(file))
  return { valid: true, statements: policy.statements.length }
}

export async function checkDecision(
  ctx: HubContext | undefined,
  input: { identity: string; op: string; topic?: string; file?: string },
): Promise<Decision> {
  const op = input.op.replace(/^mqtt:/, '') as Operation
  if (!['connect', 'publish', 'subscribe'].includes(op)) throw new UsageError(`unknown operation "${input.op}"`, 'use connect, publish or subscribe')
  if (op !== 'connect' && !input.topic) throw new UsageError(`--topic is needed for ${op}`)
  let policy
  if (input.file) policy = loadPolicyDocument(readDocument(input.file))
  else {
    const c = ctx as HubContext
    const twin = await c.store.getTwin({ deviceId: c.hub.edgeDeviceId, moduleId: '$edgeHub' })
    const auth = (twin?.desired as { mqttBroker?: { authorizations?: unknown } } | undefined)?.mqttBroker?.authorizations
    if (!auth) return { decision: 'deny', statement: null, reason: 'no authorization policy is set: default deny (set one with `edgemq edgehub set`)' }
    policy = compilePolicy(auth)
  }
  return policy.decide(identityFromClientId(input.identity), op, input.topic)
}
