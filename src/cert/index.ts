/**
 * What `edgemq cert ca` and `edgemq cert device` do, over the PKI (src/pki) and the registry:
 * the commands stay thin, and the library/REST side can reuse the same steps.
 *
 * Which certificate a device gets:
 *  - `selfSigned: true`, or a device registered with x509-thumbprint (`selfSigned`) → self-signed;
 *  - otherwise → issued by the hub CA (what x509-ca devices need).
 * Registration (`register: true`) makes the certificate usable at once:
 *  - an unknown device is created with the matching auth type (x509-thumbprint with the new
 *    SHA-256 thumbprint as primary, or x509-ca);
 *  - a registered x509-thumbprint device gets the new SHA-256 thumbprint as its primary;
 *  - a mismatch (SAS device; x509-ca device asked for a self-signed cert) is refused up front.
 * Without `register` nothing in the registry changes; mismatches come back as warnings.
 */
import { join } from 'node:path'

import type { HubContext } from '../config/home.js'
import { UsageError } from '../errors.js'
import { ensureHubPki, issueDeviceCert, normalizeThumbprint, selfSignedDeviceCert, writeCertFiles, type HubPki } from '../pki/index.js'
import type { AuthType, DeviceRecord } from '../registry/types.js'
import { validateDeviceId } from '../registry/validate.js'

/** The hub's root CA and server certificate, created on first use in `<home>/pki`. */
export function hubPki(ctx: Pick<HubContext, 'paths' | 'hub'>): Promise<HubPki> {
  return ensureHubPki(ctx.paths.pki, { hubName: ctx.hub.name })
}

/** Where `cert device` writes files without `--out`: inside the home (0700), not the cwd, since a key is among them. */
export function defaultCertDir(ctx: Pick<HubContext, 'home'>): string {
  return join(ctx.home, 'certs')
}

export interface DeviceCertOptions {
  deviceId: string
  /** Force a self-signed certificate; undefined = decide from the device's auth type. */
  selfSigned?: boolean
  /** Directory for `<id>.cert.pem` / `<id>.key.pem` (default `defaultCertDir`). */
  outDir?: string
  /** Create or update the device so this certificate authenticates it. */
  register?: boolean
  days?: number
}

export type Registration = 'created' | 'updated' | 'unchanged' | 'not registered'

export interface DeviceCertResult {
  deviceId: string
  certFile: string
  keyFile: string
  /** Uppercase hex, no colons (the form `--primary-thumbprint` takes). */
  thumbprints: { sha1: string; sha256: string }
  issuer: 'hub-ca' | 'self-signed'
  /** The hub CA: clients pass it as `--cafile` to trust the broker (and it signed CA-issued certs). */
  caFile: string
  registration: Registration
  /** Why this certificate will not (yet) authenticate the device, when that is so. */
  warnings: string[]
}

function authName(t: AuthType): string {
  return t === 'sas' ? 'SAS keys' : t === 'selfSigned' ? 'x509-thumbprint' : 'x509-ca'
}

export async function makeDeviceCert(ctx: HubContext, opts: DeviceCertOptions): Promise<DeviceCertResult> {
  const { deviceId } = opts
  validateDeviceId(deviceId)
  const device: DeviceRecord | undefined = await ctx.store.getDevice(deviceId)
  const selfSigned = opts.selfSigned ?? device?.authType === 'selfSigned'
  const wanted: AuthType = selfSigned ? 'selfSigned' : 'certificateAuthority'

  // Refuse before generating anything: the user asked for a state we cannot reach.
  if (opts.register && device && device.authType !== wanted) {
    throw new UsageError(
      `device "${deviceId}" authenticates with ${authName(device.authType)}, so --register cannot make this ${selfSigned ? 'self-signed' : 'CA-issued'} certificate its credential`,
      device.authType === 'sas' ? 'delete and re-create the device with --auth x509-thumbprint or x509-ca' : `drop --self-signed (x509-ca devices need a CA-issued certificate)`,
    )
  }

  // Made even for self-signed certs: the client still needs the hub CA to trust the broker's TLS.
  const pki = await hubPki(ctx)
  const issued = selfSigned ? await selfSignedDeviceCert(deviceId, { days: opts.days }) : await issueDeviceCert(pki, deviceId, { days: opts.days })
  const files = writeCertFiles(opts.outDir ?? defaultCertDir(ctx), deviceId, issued)
  const thumbprints = { sha1: issued.thumbprintSha1, sha256: issued.thumbprintSha256 }

  const warnings: string[] = []
  let registration: Registration = 'not registered'
  if (opts.register) {
    if (!device) {
      await ctx.registry.createDevice({ deviceId, auth: wanted, ...(selfSigned ? { primaryThumbprint: thumbprints.sha256 } : {}) })
      registration = 'created'
    } else if (selfSigned) {
      await ctx.registry.updateDevice(deviceId, { primaryThumbprint: thumbprints.sha256 })
      registration = 'updated'
    } else {
      registration = 'unchanged'
    }
  } else if (!device) {
    warnings.push(
      selfSigned
        ? `device "${deviceId}" is not registered; run \`edgemq device create ${deviceId} --auth x509-thumbprint --primary-thumbprint ${thumbprints.sha256}\` or pass --register`
        : `device "${deviceId}" is not registered; run \`edgemq device create ${deviceId} --auth x509-ca\` or pass --register`,
    )
  } else {
    registration = 'unchanged'
    if (device.authType !== wanted) {
      warnings.push(`device "${deviceId}" authenticates with ${authName(device.authType)}; this ${selfSigned ? 'self-signed' : 'CA-issued'} certificate will not authenticate it`)
    } else if (selfSigned) {
      const registered = [device.primaryThumbprint, device.secondaryThumbprint].filter((t): t is string => !!t).map(normalizeThumbprint)
      if (!registered.includes(thumbprints.sha1) && !registered.includes(thumbprints.sha256)) {
        warnings.push(`device "${deviceId}" has other thumbprints registered; pass --register to make this certificate its primary`)
      }
    }
  }
  return {
    deviceId,
    certFile: files.certPath,
    keyFile: files.keyPath,
    thumbprints,
    issuer: selfSigned ? 'self-signed' : 'hub-ca',
    caFile: pki.caCertPath,
    registration,
    warnings,
  }
}
