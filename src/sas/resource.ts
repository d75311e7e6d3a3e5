/** Resource URIs IoT Hub signs (PROTOCOL.md §2). */
export function hubHostName(hubName: string): string {
  return hubName.includes('.') ? hubName : `${hubName}.azure-devices.net`
}

export function deviceResource(hubName: string, deviceId: string, moduleId?: string): string {
  const base = `${hubHostName(hubName)}/devices/${deviceId}`
  return moduleId ? `${base}/modules/${moduleId}` : base
}
