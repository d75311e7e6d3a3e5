/** az-shaped JSON for identities (what `az iot hub device-identity show` prints). */
import type { DeviceRecord, HubRecord, ModuleRecord } from './types.js'

/** IoT Hub's scope string for an edge device: `ms-azure-iot-edge://<id>-<generationId>`. */
export function deviceScope(device: Pick<DeviceRecord, 'deviceId' | 'generationId'>): string {
  return `ms-azure-iot-edge://${device.deviceId}-${device.generationId}`
}

function authentication(rec: DeviceRecord | ModuleRecord) {
  return {
    symmetricKey: { primaryKey: rec.primaryKey ?? null, secondaryKey: rec.secondaryKey ?? null },
    type: rec.authType,
    x509Thumbprint: thumbprintsOf(rec),
  }
}

export interface ConnectionInfo {
  connectionState: 'Connected' | 'Disconnected'
  lastActivityTime?: string
}

/** `deviceScope` (an edge device's own, or a child's parent's) and `parentScopes`. */
export function scopesOf(device: DeviceRecord, parent?: DeviceRecord): { deviceScope: string | null; parentScopes: string[] } {
  return { deviceScope: device.edge ? deviceScope(device) : parent ? deviceScope(parent) : null, parentScopes: parent ? [deviceScope(parent)] : [] }
}

export function thumbprintsOf(rec: DeviceRecord | ModuleRecord) {
  return { primaryThumbprint: rec.primaryThumbprint ?? null, secondaryThumbprint: rec.secondaryThumbprint ?? null }
}

export function deviceView(device: DeviceRecord, parent?: DeviceRecord, conn?: ConnectionInfo) {
  const scopes = scopesOf(device, parent)
  return {
    authentication: authentication(device),
    capabilities: { iotEdge: device.edge },
    cloudToDeviceMessageCount: 0,
    connectionState: conn?.connectionState ?? 'Disconnected',
    connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
    deviceId: device.deviceId,
    deviceScope: scopes.deviceScope,
    etag: device.etag,
    generationId: device.generationId,
    lastActivityTime: conn?.lastActivityTime ?? '0001-01-01T00:00:00Z',
    parentScopes: scopes.parentScopes,
    status: device.status,
    statusReason: device.statusReason ?? null,
    statusUpdatedTime: device.statusUpdatedAt,
  }
}

/** `-o table` columns of a module list (`module list`, `edge set-modules`). */
export const MODULE_COLUMNS = ['deviceId', 'moduleId', 'authentication.type', 'managedBy']

export function moduleView(module: ModuleRecord, conn?: ConnectionInfo) {
  return {
    authentication: authentication(module),
    cloudToDeviceMessageCount: 0,
    connectionState: conn?.connectionState ?? 'Disconnected',
    connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
    deviceId: module.deviceId,
    etag: module.etag,
    generationId: module.generationId,
    lastActivityTime: conn?.lastActivityTime ?? '0001-01-01T00:00:00Z',
    managedBy: module.managedBy ?? null,
    moduleId: module.moduleId,
  }
}

export function hubView(hub: HubRecord, home: string) {
  return {
    name: hub.name,
    hostName: hub.hostName,
    edgeDeviceId: hub.edgeDeviceId,
    home,
    createdAt: hub.createdAt,
    broker: hub.broker,
    upstream: hub.upstream ? { hostName: hub.upstream.hostName, gatewayHostName: hub.upstream.gatewayHostName, deviceId: hub.upstream.deviceId, port: hub.upstream.port } : null,
    policies: hub.policies.map((p) => ({ keyName: p.name, rights: p.rights.join(', ') })),
    dps: hub.dps ? { idScope: hub.dps.idScope, assignedHub: hub.dps.assignedHub, policies: hub.dps.policies.map((p) => ({ keyName: p.name, rights: p.rights.join(', ') })) } : null,
  }
}
