/**
 * Issue 4: registry changes made by ANOTHER `edgemq` process reach a running broker — a device
 * disabled or deleted while connected is disconnected within 1 s — and a session ends when its
 * SAS token expires.
 */
import assert from 'node:assert/strict'
import { resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { startBroker, type BrokerProc } from '../helpers/broker.js'
import { jsonOf, REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'
import { closed, connackCode, connect } from '../helpers/mqtt.js'
import type { deviceView } from '../../src/registry/views.js'

const POLICY = resolve(REPO_ROOT, '../shared/fixtures/seed-policy-pubsub.json')

type DeviceJson = ReturnType<typeof deviceView>

describe('broker: live registry changes and token expiry', () => {
  const home = tempHome()
  let broker: BrokerProc
  const keys = new Map<string, string>()

  const token = (deviceId: string, opts: { expiry?: number } = {}) =>
    buildSasToken({ resource: deviceResource('edgemq', deviceId), key: keys.get(deviceId) as string, ...(opts.expiry ? { expiry: opts.expiry } : { durationSecs: 3600 }) })

  before(async () => {
    for (const d of ['to-disable', 'to-delete', 'short']) {
      const r = await runCli(['device', 'create', d], { home })
      assert.equal(r.code, 0, r.stderr)
      keys.set(d, jsonOf<DeviceJson>(r).authentication.symmetricKey.primaryKey as string)
    }
    const p = await runCli(['edgehub', 'set', POLICY], { home })
    assert.equal(p.code, 0, p.stderr)
    broker = await startBroker(home, ['--clock-skew', '0'])
  })

  after(async () => {
    await broker?.stop()
  })

  /** Runs the CLI command while `deviceId` is connected; returns ms from the command's exit to the drop. */
  async function dropAfter(deviceId: string, args: string[]): Promise<number> {
    const c = await connect({ port: broker.ports.mqtt, clientId: deviceId, password: token(deviceId) })
    const gone = closed(c, 15_000)
    const r = await runCli(args, { home })
    // The change is committed before the CLI exits, so its exit bounds the change's time from above.
    const changedBy = Date.now()
    assert.equal(r.code, 0, r.stderr)
    const droppedAt = await gone
    return droppedAt - changedBy
  }

  it('`edgemq device update d --status disabled` from another process → d disconnected within 1 s, then refused (5)', async () => {
    const ms = await dropAfter('to-disable', ['device', 'update', 'to-disable', '--status', 'disabled'])
    assert.ok(ms <= 1000, `disconnected ${ms} ms after the change`)
    await broker.waitForLog(/"client":"to-disable".*was disabled/)
    assert.equal(await connackCode({ port: broker.ports.mqtt, clientId: 'to-disable', password: token('to-disable') }), 5)
  })

  it('`edgemq device delete d` from another process → d disconnected within 1 s, then refused (5)', async () => {
    const ms = await dropAfter('to-delete', ['device', 'delete', 'to-delete'])
    assert.ok(ms <= 1000, `disconnected ${ms} ms after the change`)
    await broker.waitForLog(/"client":"to-delete".*was deleted/)
    assert.equal(await connackCode({ port: broker.ports.mqtt, clientId: 'to-delete', password: token('to-delete') }), 5)
  })

  it('a token expiring in ~2 s ends the session at its expiry (--clock-skew 0); a fresh token reconnects', async () => {
    const se = Math.floor(Date.now() / 1000) + 2
    const c = await connect({ port: broker.ports.mqtt, clientId: 'short', password: token('short', { expiry: se }) })
    const droppedAt = await closed(c, 10_000)
    // Not before the expiry second starts, and not long after it (timer + close).
    assert.ok(droppedAt >= (se - 1) * 1000, `dropped ${se * 1000 - droppedAt} ms before expiry`)
    assert.ok(droppedAt <= se * 1000 + 1000, `dropped ${droppedAt - se * 1000} ms after expiry`)
    await broker.waitForLog(/"client":"short".*SAS token expired/)
    const again = await connect({ port: broker.ports.mqtt, clientId: 'short', password: token('short') })
    assert.equal(again.connected, true)
    await again.endAsync()
  })
})
