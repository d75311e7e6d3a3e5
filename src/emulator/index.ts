export {
  ALLOW_ALL_AUTHORIZATIONS,
  startHub,
  type ConnectionStringOptions,
  type CreateDeviceOptions,
  type CreateModuleOptions,
  type DeviceTarget,
  type Hub,
  type HubPolicy,
  type StartHubOptions,
  type TwinUpdate,
} from './hub.js'
