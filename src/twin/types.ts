/** Twin documents as edgemq stores them: plain JSON data (PRODUCT.md "State": tags, desired, reported, versions). */

export type TwinValue = string | number | boolean | null | TwinValue[] | TwinObject
export interface TwinObject {
  [key: string]: TwinValue
}

export interface Twin {
  tags: TwinObject
  /** Desired properties without `$version`/`$metadata`. */
  desired: TwinObject
  reported: TwinObject
  /** `properties.desired.$version`: +1 per desired update. */
  desiredVersion: number
  /** `properties.reported.$version`: +1 per reported update. */
  reportedVersion: number
  /** The twin's `version`: +1 per any update (tags, desired, reported). */
  version: number
  /** The twin's `etag` (changes with `version`); az `--etag` / REST `If-Match` compare against it. */
  etag: string
}

export type TwinSection = 'tags' | 'desired' | 'reported'

/** What the device receives for `$iothub/twin/GET` (PROTOCOL.md §4). */
export interface TwinResponseBody {
  desired: TwinObject & { $version: number }
  reported: TwinObject & { $version: number }
}

/** Registry facts the service-side twin JSON shows next to the twin itself. */
export interface TwinIdentityInfo {
  deviceId: string
  moduleId?: string
  status?: 'enabled' | 'disabled'
  /** az spells them `sas`, `selfSigned`, `certificateAuthority`. */
  authenticationType?: string
  connectionState?: 'Connected' | 'Disconnected'
  /** Edge devices show `capabilities.iotEdge: true` (devices only). */
  iotEdge?: boolean
}

/** The twin as `az iot hub device-twin show` / `module-twin show` prints it (and the service REST returns). */
export interface ServiceTwinJson {
  deviceId: string
  moduleId?: string
  etag: string
  version: number
  status: 'enabled' | 'disabled'
  authenticationType: string
  connectionState: 'Connected' | 'Disconnected'
  capabilities?: { iotEdge: boolean }
  tags?: TwinObject
  properties: {
    desired: TwinObject & { $version: number }
    reported: TwinObject & { $version: number }
  }
}
