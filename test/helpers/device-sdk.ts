// The official device SDK (azure-iot-device + azure-iot-device-mqtt) as the tests use it. The SDKs
// are CommonJS with loose typings; these interfaces describe only what the tests touch.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export interface SdkMessage {
  data: Buffer
  properties: { add(k: string, v: string): void; getValue(k: string): string | undefined }
}
export interface SdkTwin {
  properties: { desired: Record<string, unknown>; reported: { update(patch: unknown, cb: (err?: Error) => void): void } }
  on(ev: 'properties.desired', cb: (patch: Record<string, unknown>) => void): void
}
export interface SdkMethodResponse {
  send(status: number, payload: unknown): Promise<void>
}
export interface SdkClient {
  setOptions(o: { ca: string }): Promise<unknown>
  open(): Promise<unknown>
  close(): Promise<unknown>
  sendEvent(m: SdkMessage): Promise<unknown>
  sendOutputEvent?(output: string, m: SdkMessage): Promise<unknown>
  getTwin(): Promise<SdkTwin>
  onDeviceMethod?(name: string, cb: (req: { payload: unknown }, res: SdkMethodResponse) => void): void
  onMethod?(name: string, cb: (req: { payload: unknown }, res: SdkMethodResponse) => void): void
  on(ev: 'message', cb: (m: SdkMessage) => void): void
  complete(m: SdkMessage): Promise<unknown>
}

export const { Client, ModuleClient, Message } = require('azure-iot-device') as {
  Client: { fromConnectionString(cs: string, transport: unknown): SdkClient }
  ModuleClient: { fromConnectionString(cs: string, transport: unknown): SdkClient }
  Message: new (data: string) => SdkMessage
}
/** The SDK's MQTT transports: TCP on 8883, and MQTT over WebSockets on 443 (`/$iothub/websocket`). */
export const { Mqtt, MqttWs } = require('azure-iot-device-mqtt') as { Mqtt: unknown; MqttWs: unknown }
