/**
 * Which partition a device's telemetry goes to. IoT Hub keeps a device's messages in one
 * partition (so they stay in order); its hash is not documented, so edgemq uses FNV-1a (32 bit)
 * over the device id's UTF-8 bytes: stable across runs, processes and platforms.
 */
export function partitionOf(deviceId: string, partitionCount: number): number {
  let h = 0x811c9dc5
  for (const byte of Buffer.from(deviceId, 'utf8')) {
    h ^= byte
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h % partitionCount
}
