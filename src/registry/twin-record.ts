import { randomBytes } from 'node:crypto'

import { createTwin } from '../twin/twin.js'
import type { TwinRecord } from './types.js'

export function newEtag(): string {
  return randomBytes(9).toString('base64')
}

/** A new twin, as IoT Hub creates it with an identity: versions at 1, etag from the version. */
export function emptyTwin(): TwinRecord {
  return createTwin()
}
