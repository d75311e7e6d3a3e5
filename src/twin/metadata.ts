/**
 * Twin `$metadata` (IoT Hub "Device twins": "Metadata"): for every property of desired and reported,
 * and for every object on the way to it, `$lastUpdated` (and, on desired, `$lastUpdatedVersion`, the
 * desired `$version` that last wrote it). Kept as a tree beside each section and updated with each patch.
 */
import type { TwinObject, TwinValue } from './types.js'

/** IoT Hub's "never" timestamp. */
export const NEVER = '0001-01-01T00:00:00Z'

export interface MetadataStamp {
  $lastUpdated: string
  $lastUpdatedVersion?: number
}

function isObject(v: TwinValue | undefined): v is TwinObject {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v)
}

function stampOf(node: TwinValue | undefined): MetadataStamp | undefined {
  if (!isObject(node) || typeof node.$lastUpdated !== 'string') return undefined
  return { $lastUpdated: node.$lastUpdated, ...(typeof node.$lastUpdatedVersion === 'number' ? { $lastUpdatedVersion: node.$lastUpdatedVersion } : {}) }
}

function setOwn(obj: TwinObject, key: string, value: TwinValue): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Metadata for a value written whole at `stamp`. */
export function metadataFor(value: TwinObject, stamp: MetadataStamp): TwinObject {
  const out: TwinObject = { ...stamp }
  for (const [k, v] of Object.entries(value)) setOwn(out, k, isObject(v) ? metadataFor(v, stamp) : { ...stamp })
  return out
}

/** The metadata after merging `patch` at `stamp`: every node on a written path gets the stamp, deleted keys go. */
export function mergeMetadata(meta: TwinObject | undefined, patch: TwinObject, stamp: MetadataStamp): TwinObject {
  const out: TwinObject = { ...(meta ?? {}), ...stamp }
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete out[k]
      continue
    }
    const cur = meta && Object.prototype.hasOwnProperty.call(meta, k) ? meta[k] : undefined
    setOwn(out, k, isObject(v) ? mergeMetadata(isObject(cur) ? cur : undefined, v, stamp) : { ...stamp })
  }
  return out
}

/**
 * `$metadata` for a section as shown: the stored tree where it has a node, else the nearest stamp
 * above (a section written outside the patch functions, or a twin stored before metadata existed).
 */
export function renderMetadata(value: TwinObject, meta: TwinObject | undefined, fallback: MetadataStamp): TwinObject {
  const stamp = stampOf(meta) ?? fallback
  const out: TwinObject = { ...stamp }
  for (const [k, v] of Object.entries(value)) {
    const node = meta && Object.prototype.hasOwnProperty.call(meta, k) ? meta[k] : undefined
    setOwn(out, k, isObject(v) ? renderMetadata(v, isObject(node) ? node : undefined, stamp) : { ...(stampOf(node) ?? stamp) })
  }
  return out
}
