/**
 * Storing the `$edgeHub` desired document in the edge device's `$edgeHub` module twin.
 * A running broker follows the registry's change feed and applies it within a second.
 */
import { readFileSync } from 'node:fs'

import type { HubContext } from '../config/home.js'
import { DEFAULT_AUTHORIZATIONS, assertNoErrors, mergeDesiredPatch, parseEdgeHubDocument, validateEdgeHubDesired, type EdgeHubIssue } from '../edgehub/index.js'
import { EdgeMqError, NotFoundError } from '../errors.js'
import type { JsonObject } from '../policy/index.js'
import type { TwinRecord } from '../registry/types.js'
import { mergeMetadata, metadataFor, type TwinObject } from '../twin/index.js'

/** Reads a file path or `-` (stdin) with a clear error for missing files. */
export function readDocument(source: string): string {
  try {
    return source === '-' ? readFileSync(0, 'utf8') : readFileSync(source.replace(/^@/, ''), 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new NotFoundError(`file "${source}" not found`)
    throw new EdgeMqError(`cannot read "${source}": ${code ?? (err as Error).message}`)
  }
}

/** The seed's "allow all identities to connect" policy (as a desired patch). */
export function defaultPolicyDocument(): JsonObject {
  return { schemaVersion: '1.2', mqttBroker: { authorizations: structuredClone(DEFAULT_AUTHORIZATIONS) as unknown as JsonObject[] } } as JsonObject
}

export interface SetEdgeHubResult {
  desiredVersion: number
  desired: Record<string, unknown>
  warnings: EdgeHubIssue[]
}

/** Validates the patch and the merged result; stores it only if both are valid (exit 2 otherwise). */
export async function setEdgeHubDesired(ctx: HubContext, patch: JsonObject, opts: { replace?: boolean } = {}): Promise<SetEdgeHubResult> {
  const key = { deviceId: ctx.hub.edgeDeviceId, moduleId: '$edgeHub' }
  let warnings: EdgeHubIssue[] = []
  const twin = await ctx.store.updateTwin(
    key,
    (t): TwinRecord => {
      const merged = opts.replace ? patch : mergeDesiredPatch(t.desired as JsonObject, patch)
      const issues = validateEdgeHubDesired(merged)
      assertNoErrors(issues)
      warnings = issues.filter((i) => i.severity === 'warning')
      const desiredVersion = t.desiredVersion + 1
      const stamp = { $lastUpdated: new Date().toISOString(), $lastUpdatedVersion: desiredVersion }
      const desiredMetadata = opts.replace ? metadataFor(merged as TwinObject, stamp) : mergeMetadata(t.desiredMetadata as TwinObject | undefined, patch as TwinObject, stamp)
      return { ...t, desired: merged, desiredVersion, desiredMetadata, version: t.version + 1 }
    },
    'desired',
  )
  return { desiredVersion: twin.desiredVersion, desired: twin.desired, warnings }
}

export function parseEdgeHubFile(source: string): JsonObject {
  return parseEdgeHubDocument(readDocument(source))
}

export async function showEdgeHub(ctx: HubContext) {
  const twin = await ctx.store.getTwin({ deviceId: ctx.hub.edgeDeviceId, moduleId: '$edgeHub' })
  return {
    deviceId: ctx.hub.edgeDeviceId,
    moduleId: '$edgeHub',
    properties: {
      desired: { ...(twin?.desired ?? {}), $version: twin?.desiredVersion ?? 1 },
      reported: { ...(twin?.reported ?? {}), $version: twin?.reportedVersion ?? 1 },
    },
  }
}
