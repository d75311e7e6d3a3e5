/**
 * Twin updates as IoT Hub applies them. Pure: every function returns a new Twin.
 * - Patches merge (JSON merge patch semantics): objects merge recursively, `null` deletes a key,
 *   anything else (arrays included) replaces (IoT Hub "Back-end operations": update properties).
 * - `properties.desired.$version` / `properties.reported.$version` count updates of their side;
 *   the twin `version` counts every update; `etag` follows `version`.
 * - A new twin starts with every version at 1 (what `az iot hub device-twin show` shows for a
 *   fresh device).
 */
import { TwinPreconditionError, TwinValidationError, jsonSize, sectionLimit, validateTwinPatch } from './validate.js'
import { mergeMetadata, metadataFor, NEVER, renderMetadata, type MetadataStamp } from './metadata.js'
import type { ServiceTwinJson, Twin, TwinIdentityInfo, TwinObject, TwinResponseBody, TwinSection, TwinValue } from './types.js'

/** IoT Hub etags look like `AAAAAAAAAAE=`: base64 of the 64-bit big-endian version. */
export function etagFor(version: number): string {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(version))
  return b.toString('base64')
}

export function createTwin(init: Partial<Pick<Twin, 'tags' | 'desired' | 'reported'>> = {}, now = new Date().toISOString()): Twin {
  const desired = clone(init.desired ?? {})
  const reported = clone(init.reported ?? {})
  return {
    tags: clone(init.tags ?? {}),
    desired,
    reported,
    desiredVersion: 1,
    reportedVersion: 1,
    version: 1,
    etag: etagFor(1),
    desiredMetadata: metadataFor(desired, { $lastUpdated: now, $lastUpdatedVersion: 1 }),
    reportedMetadata: metadataFor(reported, { $lastUpdated: now }),
  }
}

function clone<T extends TwinValue>(v: T): T {
  return structuredClone(v)
}

function isObject(v: TwinValue | undefined): v is TwinObject {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v)
}

/** Set an own member even for the key `__proto__` (a valid twin property name). */
function setOwn(obj: TwinObject, key: string, value: TwinValue): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Merge `patch` into `target` (not mutated): objects recurse, null deletes, the rest replaces. */
export function mergePatch(target: TwinObject, patch: TwinObject): TwinObject {
  const out: TwinObject = { ...target }
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete out[k]
    } else if (isObject(v)) {
      const cur = Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined
      setOwn(out, k, mergePatch(isObject(cur) ? cur : {}, v))
    } else {
      setOwn(out, k, clone(v))
    }
  }
  return out
}

/** A replacement section has no deletes to apply: drop null members, as IoT Hub stores no nulls. */
function stripNulls(obj: TwinObject): TwinObject {
  return mergePatch({}, obj)
}

function checkSize(section: TwinSection, value: TwinObject): void {
  const size = jsonSize(value)
  const limit = sectionLimit(section)
  if (size > limit) {
    throw new TwinValidationError(
      `${section} properties would be ${size} bytes after this update; IoT Hub allows ${limit} bytes (${limit / 1024} KB)`,
    )
  }
}

export interface UpdateOptions {
  /** az `--etag` / REST `If-Match`: must equal the twin's etag (`*` = any). */
  ifMatch?: string
  /** The `$metadata.$lastUpdated` this update stamps (default: the clock). */
  now?: string
}

function stamp(opts: UpdateOptions, desiredVersion?: number): MetadataStamp {
  return { $lastUpdated: opts.now ?? new Date().toISOString(), ...(desiredVersion === undefined ? {} : { $lastUpdatedVersion: desiredVersion }) }
}

function checkEtag(twin: Twin, ifMatch: string | undefined): void {
  if (ifMatch === undefined || ifMatch === '*') return
  const want = ifMatch.replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
  if (want !== twin.etag) throw new TwinPreconditionError(`etag "${want}" does not match the twin's current etag "${twin.etag}"`)
}

function bump(twin: Twin): Pick<Twin, 'version' | 'etag'> {
  const version = twin.version + 1
  return { version, etag: etagFor(version) }
}

/** Apply a desired-properties patch (service side). Invalid → 400, etag mismatch → 412. */
export function applyDesiredPatch(twin: Twin, patch: unknown, opts: UpdateOptions = {}): Twin {
  checkEtag(twin, opts.ifMatch)
  const clean = validateTwinPatch(patch, 'desired')
  const desired = mergePatch(twin.desired, clean)
  checkSize('desired', desired)
  const desiredVersion = twin.desiredVersion + 1
  return { ...twin, desired, desiredVersion, desiredMetadata: mergeMetadata(twin.desiredMetadata, clean, stamp(opts, desiredVersion)), ...bump(twin) }
}

/** Apply a reported-properties patch (device side, `$iothub/twin/PATCH/properties/reported/`). */
export function applyReportedPatch(twin: Twin, patch: unknown, opts: Pick<UpdateOptions, 'now'> = {}): Twin {
  const clean = validateTwinPatch(patch, 'reported')
  const reported = mergePatch(twin.reported, clean)
  checkSize('reported', reported)
  return { ...twin, reported, reportedVersion: twin.reportedVersion + 1, reportedMetadata: mergeMetadata(twin.reportedMetadata, clean, stamp(opts)), ...bump(twin) }
}

/** Apply a tags patch (service side). */
export function applyTagsPatch(twin: Twin, patch: unknown, opts: UpdateOptions = {}): Twin {
  checkEtag(twin, opts.ifMatch)
  const clean = validateTwinPatch(patch, 'tags')
  const tags = mergePatch(twin.tags, clean)
  checkSize('tags', tags)
  return { ...twin, tags, ...bump(twin) }
}

export interface ServiceUpdate {
  tags?: unknown
  desired?: unknown
}

/**
 * One service-side update (az `device-twin update --desired … --tags … --etag …`, REST PATCH/PUT
 * on /twins): validated as a whole before anything changes, one `version` step. With
 * `replace`, the given sections replace the stored ones (REST PUT; `edgehub set --replace`).
 */
export function updateTwin(twin: Twin, update: ServiceUpdate, opts: UpdateOptions & { replace?: boolean } = {}): Twin {
  checkEtag(twin, opts.ifMatch)
  const tagsPatch = update.tags === undefined ? undefined : validateTwinPatch(update.tags, 'tags')
  const desiredPatch = update.desired === undefined ? undefined : validateTwinPatch(update.desired, 'desired')
  if (tagsPatch === undefined && desiredPatch === undefined) return twin
  const next: Twin = { ...twin, ...bump(twin) }
  if (tagsPatch !== undefined) {
    next.tags = opts.replace === true ? stripNulls(tagsPatch) : mergePatch(twin.tags, tagsPatch)
    checkSize('tags', next.tags)
  }
  if (desiredPatch !== undefined) {
    next.desired = opts.replace === true ? stripNulls(desiredPatch) : mergePatch(twin.desired, desiredPatch)
    checkSize('desired', next.desired)
    next.desiredVersion = twin.desiredVersion + 1
    const s = stamp(opts, next.desiredVersion)
    next.desiredMetadata = opts.replace === true ? metadataFor(next.desired, s) : mergeMetadata(twin.desiredMetadata, desiredPatch, s)
  }
  return next
}

/** The body of `$iothub/twin/res/200/?$rid=…` for a GET (PROTOCOL.md §4). */
export function twinResponseBody(twin: Twin): TwinResponseBody {
  return {
    desired: { ...clone(twin.desired), $version: twin.desiredVersion },
    reported: { ...clone(twin.reported), $version: twin.reportedVersion },
  }
}

/** The body published on `$iothub/twin/PATCH/properties/desired/?$version=<n>`: the patch plus `$version`. */
export function desiredPatchNotification(patch: TwinObject, desiredVersion: number): TwinObject {
  return { ...clone(patch), $version: desiredVersion }
}

/**
 * The twin as the service side shows it (az `device-twin show` / `module-twin show`, REST GET
 * /twins/<d>[/modules/<m>], query results): IoT Hub's twin fields. `tags` appears only when set,
 * as IoT Hub omits it for a bare twin.
 */
export function serviceTwinJson(twin: Twin, info: TwinIdentityInfo): ServiceTwinJson {
  const device = info.moduleId === undefined
  return {
    deviceId: info.deviceId,
    ...(device ? {} : { moduleId: info.moduleId }),
    etag: twin.etag,
    deviceEtag: info.deviceEtag ?? null,
    version: twin.version,
    status: info.status ?? 'enabled',
    ...(device ? { statusReason: info.statusReason ?? null } : {}),
    statusUpdateTime: info.statusUpdateTime ?? NEVER,
    authenticationType: info.authenticationType ?? 'sas',
    connectionState: info.connectionState ?? 'Disconnected',
    lastActivityTime: info.lastActivityTime ?? NEVER,
    cloudToDeviceMessageCount: info.cloudToDeviceMessageCount ?? 0,
    x509Thumbprint: info.x509Thumbprint ?? { primaryThumbprint: null, secondaryThumbprint: null },
    modelId: info.modelId ?? '',
    ...(device ? { capabilities: { iotEdge: info.iotEdge ?? false }, deviceScope: info.deviceScope ?? null, parentScopes: info.parentScopes ?? [] } : {}),
    ...(Object.keys(twin.tags).length > 0 ? { tags: clone(twin.tags) } : {}),
    properties: {
      desired: { ...clone(twin.desired), $metadata: renderMetadata(twin.desired, twin.desiredMetadata, { $lastUpdated: NEVER }), $version: twin.desiredVersion },
      reported: { ...clone(twin.reported), $metadata: renderMetadata(twin.reported, twin.reportedMetadata, { $lastUpdated: NEVER }), $version: twin.reportedVersion },
    },
  }
}
