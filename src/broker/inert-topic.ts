/**
 * Where a message goes that aedes must still "publish" but nobody may receive (see the broker's
 * persistBeforeAck): no filter can match it, and the cluster bus does not carry it to Redis.
 */
export const INERT_TOPIC = '$edgemq/-/published'
