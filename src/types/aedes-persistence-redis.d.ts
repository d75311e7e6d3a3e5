// aedes-persistence-redis and mqemitter-redis's prefix variant ship no (complete) types; edgemq
// only hands their instances to aedes.
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'
  const redisPersistence: (opts: { conn: Redis; maxSessionDelivery?: number; packetTTL?: (packet: unknown) => number }) => unknown
  export default redisPersistence
}
