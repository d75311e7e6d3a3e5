/**
 * The registry records a CONNECT looks up (device, module), cached for as long as the store's
 * data version stays the same (issue 16: the lookup and its JSON parse were the largest edgemq
 * cost of a connect storm). Any committed registry write, by the broker or by another process
 * (`edgemq device update`, key rotation, disable), changes the version, and the next cache hit
 * drops the whole cache: a revoked key or a disabled device is refused on the next CONNECT, not
 * after the change feed's poll.
 *
 * Reading the version starts an SQLite read transaction, as costly as the lookup itself, so it is
 * read only to serve a hit, and then once per turn of the event loop: a write committed while a
 * turn is running is seen by the CONNECTs of the next turn, well under a millisecond later, and a
 * client that connects after the write returned is always in a later turn. A miss reads the store
 * itself, which is current, and keeps the record only if no version check dropped the cache in
 * between; the next check then keeps it only if the version is still the one read before it was
 * looked up (`generation` guards that window). A store without a data version (Redis) is not
 * cached.
 */
import type { DeviceRecord, ModuleRecord, Store } from '../registry/types.js'

/** Entries kept at most; past it the cache starts over (a simple bound, no LRU bookkeeping). */
const MAX_ENTRIES = 20_000

export class RegistryCache {
  /** The version last read; entries read since are valid only while it holds. */
  private version: string | undefined
  /** The version was read in this turn (cleared by a setImmediate). */
  private checked = false
  private readonly endTurn = () => {
    this.checked = false
  }
  /** Bumped whenever the cache is emptied: a lookup that began before is not kept. */
  private generation = 0
  private readonly devices = new Map<string, Readonly<DeviceRecord> | undefined>()
  private readonly modules = new Map<string, Readonly<ModuleRecord> | undefined>()
  private readonly versioned: boolean

  constructor(private readonly store: Store) {
    this.versioned = typeof store.dataVersion === 'function'
  }

  async device(deviceId: string): Promise<DeviceRecord | undefined> {
    if (!this.versioned) return this.store.getDevice(deviceId)
    if (this.devices.has(deviceId) && this.fresh() && this.devices.has(deviceId)) return this.devices.get(deviceId)
    const gen = this.generation
    const d = await this.store.getDevice(deviceId)
    return this.keep(gen, this.devices, deviceId, d)
  }

  async module(deviceId: string, moduleId: string): Promise<ModuleRecord | undefined> {
    if (!this.versioned) return this.store.getModule(deviceId, moduleId)
    const key = `${deviceId}/${moduleId}`
    if (this.modules.has(key) && this.fresh() && this.modules.has(key)) return this.modules.get(key)
    const gen = this.generation
    const m = await this.store.getModule(deviceId, moduleId)
    return this.keep(gen, this.modules, key, m)
  }

  /**
   * Checks the version (once per turn) before a hit is served; when it moved, every entry goes,
   * including those looked up since the last check, which may predate the write.
   */
  private fresh(): boolean {
    if (this.checked) return true
    const v = this.store.dataVersion?.()
    this.checked = true
    setImmediate(this.endTurn)
    if (v !== this.version) {
      this.version = v
      this.clear()
    }
    return true
  }

  private clear(): void {
    this.generation++
    this.devices.clear()
    this.modules.clear()
  }

  /** Frozen: every CONNECT of the identity shares the record, nobody may change it. */
  private keep<T extends object>(gen: number, map: Map<string, Readonly<T> | undefined>, key: string, value: T | undefined): T | undefined {
    if (gen !== this.generation) return value
    if (this.devices.size + this.modules.size >= MAX_ENTRIES) this.clear()
    if (value) Object.freeze(value)
    map.set(key, value)
    return value
  }
}
