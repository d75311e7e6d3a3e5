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
  /** `properties.desired.$metadata` as a tree (metadata.ts); absent on twins stored before it existed. */
  desiredMetadata?: TwinObject
  reportedMetadata?: TwinObject
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
  /** The identity's etag (the twin's own `etag` follows the twin version). */
  deviceEtag?: string
  statusReason?: string | null
  statusUpdateTime?: string
  lastActivityTime?: string
  cloudToDeviceMessageCount?: number
  x509Thumbprint?: { primaryThumbprint: string | null; secondaryThumbprint: string | null }
  modelId?: string
  /** Devices only: `ms-azure-iot-edge://…` of an edge device or of a child's parent. */
  deviceScope?: string | null
  parentScopes?: string[]
}

/** The twin as `az iot hub device-twin show` / `module-twin show` prints it (and the service REST returns). */
export interface ServiceTwinJson {
  deviceId: string
  moduleId?: string
  etag: string
  deviceEtag: string | null
  version: number
  status: 'enabled' | 'disabled'
  statusReason?: string | null
  statusUpdateTime: string
  authenticationType: string
  connectionState: 'Connected' | 'Disconnected'
  lastActivityTime: string
  cloudToDeviceMessageCount: number
  x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null }
  modelId: string
  capabilities?: { iotEdge: boolean }
  deviceScope?: string | null
  parentScopes?: string[]
  tags?: TwinObject
  properties: {
    desired: TwinObject & { $metadata: TwinObject; $version: number }
    reported: TwinObject & { $metadata: TwinObject; $version: number }
  }
}
