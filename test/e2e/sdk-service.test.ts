/**
 * The official service SDK `azure-iothub` works unchanged against an in-memory hub started with
 * `startHub()` (issue 10): it creates a device, the official device SDK connects with the connection
 * string the hub gives, the service SDK invokes a direct method and updates a desired property, and
 * the device sees both; plus modules, twin etags, 409/404/412/504/401 as the SDK's own error types.
 *
 * Ports: the service SDK always dials 443 and the device SDK 8883, so this hub uses exactly those.
 * sdk-device.test.ts also needs 8883: scripts/run-tests.mjs runs `sdk-` files one at a time.
 * The SDK flow runs in a child (helpers/sdk-service-child.ts) because the SDK trusts the hub CA only
 * through NODE_EXTRA_CA_CERTS, which Node reads at process start.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { startHub, type HubEvent } from '../../src/index.js'
import { helperScript } from '../helpers/paths.js'

const CHILD = helperScript('sdk-service-child')

test('azure-iothub + azure-iot-device against startHub(): registry, direct method, desired property', async () => {
  const hub = await startHub({ ports: { mqtt: 0, mqtts: 8883, rest: 443 } })
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-sdk-'))
  try {
    assert.equal(hub.ports.rest, 443)
    const caFile = join(dir, 'hub-ca.pem')
    writeFileSync(caFile, hub.caPem)
    const events = hub.events({ deviceId: 'sdk-thermostat' })

    const child = spawn(process.execPath, [...CHILD.execArgv, CHILD.path], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined, NODE_EXTRA_CA_CERTS: caFile, HUB_SERVICE_CS: hub.serviceConnectionString() },
    })
    let stderr = ''
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()))
    child.stdout?.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('message', (m: unknown) => {
      const msg = m as { type?: string; deviceId?: string; moduleId?: string }
      if (msg.type !== 'cs' || !msg.deviceId) return
      hub.deviceConnectionString(msg.deviceId, { module: msg.moduleId }).then(
        (cs) => child.send({ type: 'cs', deviceId: msg.deviceId, moduleId: msg.moduleId, cs }),
        (err: Error) => {
          stderr += `parent: ${err.message}\n`
          child.kill()
        },
      )
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    const [code] = (await once(child, 'exit')) as [number | null]
    clearTimeout(timer)
    assert.equal(code, 0, `SDK flow failed:\n${stderr}`)

    // The device's telemetry reached the hub's event stream (what a test asserts on with hub.events()).
    const first = (await Promise.race([events.next(), new Promise((_r, reject) => setTimeout(() => reject(new Error('no telemetry event')), 5000))])) as IteratorResult<HubEvent>
    assert.equal(first.done, false)
    assert.deepEqual(JSON.parse((first.value as HubEvent).payload.toString()), { temperature: 21.5 })
    await events.return?.()
    // The SDK deleted its device at the end.
    assert.equal(await hub.context.store.getDevice('sdk-thermostat'), undefined)
  } finally {
    await hub.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
