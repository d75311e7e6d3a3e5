/**
 * Lazy loader for @peculiar/x509.
 *
 * Two quirks of @peculiar/x509@2 under Node, both handled here so callers never see them:
 * 1. It uses tsyringe for dependency injection, and tsyringe throws at import time unless a
 *    `Reflect.getMetadata` polyfill (normally the `reflect-metadata` package) is installed.
 *    We are not a decorator-metadata user ourselves, so instead of adding a global dependency we
 *    install the three functions tsyringe calls — only if no real polyfill is already present.
 * 2. Its default crypto provider is only set in browsers (`typeof self !== 'undefined'`), so in
 *    Node we must hand it `node:crypto`'s WebCrypto explicitly.
 *
 * Loading is deferred to the first certificate operation: the import costs tens of ms, and most
 * CLI commands (and the broker's per-connection auth path) never generate certificates.
 */
import { webcrypto } from 'node:crypto'

type X509Module = typeof import('@peculiar/x509')

type MetadataKey = unknown
type MetadataTarget = object
interface MetadataReflect {
  getMetadata?: (key: MetadataKey, target: MetadataTarget, prop?: string | symbol) => unknown
  getOwnMetadata?: (key: MetadataKey, target: MetadataTarget, prop?: string | symbol) => unknown
  defineMetadata?: (key: MetadataKey, value: unknown, target: MetadataTarget, prop?: string | symbol) => void
}

/** Minimal reflect-metadata subset (define / getOwn / get walking the prototype chain). */
function installReflectMetadataShim(): void {
  const r = Reflect as typeof Reflect & MetadataReflect
  if (typeof r.getMetadata === 'function') return // a real polyfill is loaded; keep it
  const store = new WeakMap<object, Map<string | symbol | undefined, Map<MetadataKey, unknown>>>()
  const own = (target: object, prop: string | symbol | undefined, create: boolean): Map<MetadataKey, unknown> | undefined => {
    let byProp = store.get(target)
    if (!byProp) {
      if (!create) return undefined
      byProp = new Map()
      store.set(target, byProp)
    }
    let m = byProp.get(prop)
    if (!m && create) {
      m = new Map()
      byProp.set(prop, m)
    }
    return m
  }
  r.defineMetadata = (key, value, target, prop) => {
    own(target, prop, true)!.set(key, value)
  }
  r.getOwnMetadata = (key, target, prop) => own(target, prop, false)?.get(key)
  r.getMetadata = (key, target, prop) => {
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
      const m = own(t, prop, false)
      if (m?.has(key)) return m.get(key)
    }
    return undefined
  }
}

let loading: Promise<X509Module> | undefined

export function loadX509(): Promise<X509Module> {
  loading ??= (async () => {
    installReflectMetadataShim()
    const x509 = await import('@peculiar/x509')
    // node:crypto's webcrypto is structurally the DOM Crypto the library is typed against.
    x509.cryptoProvider.set(webcrypto as unknown as Crypto)
    return x509
  })()
  return loading
}

