import { randomBytes } from 'node:crypto'

import type { TwinRecord } from './types.js'

export function newEtag(): string {
  return randomBytes(9).toString('base64')
}

export function emptyTwin(): TwinRecord {
  return { tags: {}, desired: {}, reported: {}, desiredVersion: 1, reportedVersion: 1, version: 1, etag: newEtag() }
}
