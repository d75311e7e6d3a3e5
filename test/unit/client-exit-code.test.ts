/** `edgemq pub`/`sub` exit with mosquitto's codes (the real tools are compared in test/e2e/client-exit-codes.test.ts). */
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ConnectionRefusedError } from '../../src/client/connect.js'
import { MOSQUITTO_TIMEOUT_EXIT, mosquittoExitCode } from '../../src/client/exit-code.js'
import { BrokerUnreachableError, InvalidDocumentError, TimeoutError, UsageError } from '../../src/errors.js'

test('a refused CONNECT exits with its CONNACK code (MQTT 3.1.1 and 5)', () => {
  assert.equal(mosquittoExitCode(new ConnectionRefusedError(4, 4)), 4)
  assert.equal(mosquittoExitCode(new ConnectionRefusedError(5, 4)), 5)
  assert.equal(mosquittoExitCode(new ConnectionRefusedError(0x87, 5)), 0x87)
})

test('nobody listening → 1; -W timeout → 27; others keep edgemq\'s code', () => {
  assert.equal(mosquittoExitCode(new BrokerUnreachableError()), 1)
  assert.equal(mosquittoExitCode(new TimeoutError('timed out')), MOSQUITTO_TIMEOUT_EXIT)
  assert.equal(MOSQUITTO_TIMEOUT_EXIT, 27)
  assert.equal(mosquittoExitCode(new UsageError('bad')), 1)
  assert.equal(mosquittoExitCode(new InvalidDocumentError('bad')), 2)
})
