/**
 * IoT Hub's shared access policy rights (PROTOCOL.md §8), as the real hub grants them: every
 * service request names the right it needs, and the policy that signed its SAS token must hold it.
 */
export type ServiceRight = 'RegistryRead' | 'RegistryWrite' | 'ServiceConnect' | 'DeviceConnect'

export const SERVICE_RIGHTS: readonly ServiceRight[] = ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect']

/** IoT Hub's default shared access policies and their rights. */
export const DEFAULT_POLICY_RIGHTS: Readonly<Record<string, readonly ServiceRight[]>> = {
  iothubowner: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
  service: ['ServiceConnect'],
  device: ['DeviceConnect'],
  registryRead: ['RegistryRead'],
  registryReadWrite: ['RegistryRead', 'RegistryWrite'],
}

/** Does a policy with `rights` allow `need`? RegistryWrite implies RegistryRead, as in IoT Hub. */
export function grants(rights: readonly string[], need: ServiceRight): boolean {
  if (rights.includes(need)) return true
  return need === 'RegistryRead' && rights.includes('RegistryWrite')
}
