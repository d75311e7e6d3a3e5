/**
 * The registry records a CONNECT looks up (device, module), cached for as long as the store's
 * data version stays the same (issue 16: the lookup and its JSON parse were the largest edgemq
 * cost of a connect storm). Any committed registry write, by the broker or by another process
 * (`edgemq device update`, key rotation, disable), changes the version, and the next lookup
 * drops the whole cache: a revoked key or a disabled device is refused on the next CONNECT, not
 * after the change feed's poll. The version is read once per turn of the event loop (reading it
 * starts an SQLite read transaction, as costly as the lookup itself): a write committed while a
 * turn is running is seen by the CONNECTs of the next turn, well under a millisecond later, and
 * a client that connects after the write returned is always in a later turn. A store without a
 * data version (Redis) is not cached.
 */
import type { DeviceRecord, ModuleRecord, Store } from '../registry/types.js'

/** Entries kept at most; past it the cache starts over (a simple bound, no LRU bookkeeping). */
const MAX_ENTRIES = 20_000

export class RegistryCache {
  private version: string | undefined
  /** The version was read in this turn (cleared by a setImmediate). */
  private checked = false
  private readonly endTurn = () => {
    this.checked = false
  }
  private readonly devices = new Map<string, Readonly<DeviceRecord> | undefined>()
  private readonly modules = new Map<string, Readonly<ModuleRecord> | undefined>()

  constructor(private readonly store: Store) {}

  async device(deviceId: string): Promise<DeviceRecord | undefined> {
    if (!this.fresh()) return this.store.getDevice(deviceId)
    if (this.devices.has(deviceId)) return this.devices.get(deviceId)
    const d = await this.store.getDevice(deviceId)
    return this.keep(this.devices, deviceId, d)
  }

  async module(deviceId: string, moduleId: string): Promise<ModuleRecord | undefined> {
    if (!this.fresh()) return this.store.getModule(deviceId, moduleId)
    const key = `${deviceId}/${moduleId}`
    if (this.modules.has(key)) return this.modules.get(key)
    const m = await this.store.getModule(deviceId, moduleId)
    return this.keep(this.modules, key, m)
  }

  /** Whether the store has a version and the cache matches it (emptied when it does not). */
  private fresh(): boolean {
    if (this.checked) return true
    const v = this.store.dataVersion?.()
    if (v === undefined) return false
    this.checked = true
    setImmediate(this.endTurn)
    if (v !== this.version) {
      this.version = v
      this.devices.clear()
      this.modules.clear()
    }
    return true
  }

  /**
   * Frozen: every CONNECT of the identity shares the record, nobody may change it. Read after the
   * version it is kept under, so it is never older than that version.
   */
  private keep<T extends object>(map: Map<string, Readonly<T> | undefined>, key: string, value: T | undefined): T | undefined {
    if (this.devices.size + this.modules.size >= MAX_ENTRIES) {
      this.devices.clear()
      this.modules.clear()
    }
    if (value) Object.freeze(value)
    map.set(key, value)
    return value
  }
}
