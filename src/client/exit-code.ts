/**
 * mosquitto_pub / mosquitto_sub 2.0's exit codes, which `edgemq pub` / `edgemq sub` keep instead
 * of edgemq's own (PRODUCT.md "Exit codes"; checked against the real tools in
 * test/e2e/client-exit-codes.test.ts):
 *   - a refused CONNECT exits with the CONNACK code (4 bad user name or password, 5 not authorised;
 *     MQTT 5: the reason code),
 *   - nobody listening (connection refused, host unreachable) exits 1,
 *   - a `-W` timeout exits 27 (libmosquitto's MOSQ_ERR_TIMEOUT).
 * Everything else keeps edgemq's code (usage errors are 1 in both).
 */
import { BrokerUnreachableError, EdgeMqError, TimeoutError } from '../errors.js'
import { ConnectionRefusedError } from './connect.js'

/** MOSQ_ERR_TIMEOUT: what mosquitto_sub -W exits with when the time runs out. */
export const MOSQUITTO_TIMEOUT_EXIT = 27

export function mosquittoExitCode(err: EdgeMqError): number {
  if (err instanceof ConnectionRefusedError) return err.reasonCode > 0 && err.reasonCode < 256 ? err.reasonCode : 1
  if (err instanceof BrokerUnreachableError) return 1
  if (err instanceof TimeoutError) return MOSQUITTO_TIMEOUT_EXIT
  return err.exitCode
}
