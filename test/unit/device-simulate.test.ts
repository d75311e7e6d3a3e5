/** `device simulate`'s pause: --mi is seconds (as az), --interval milliseconds, default az's 3 s. */
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { SIMULATE_DEFAULT_INTERVAL_SECS, simulateIntervalMs } from '../../src/device/device-client.js'

test('--mi is seconds, --interval milliseconds, neither is 3 s', () => {
  assert.equal(simulateIntervalMs({ msgIntervalSecs: 1 }), 1000)
  assert.equal(simulateIntervalMs({ msgIntervalSecs: 0 }), 0)
  assert.equal(simulateIntervalMs({ intervalMs: 250 }), 250)
  assert.equal(simulateIntervalMs({}), 3000)
  assert.equal(SIMULATE_DEFAULT_INTERVAL_SECS, 3)
})
