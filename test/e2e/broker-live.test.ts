/**
 * Issue 4: registry changes made by ANOTHER `edgemq` process reach a running broker — a device
 * disabled or deleted while connected is disconnected within 1 s — and a session ends when its
 * SAS token expires.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { runCli, tempHome } from '../helpers/cli.js'
import { startTestHub, type TestHub } from '../helpers/hub.js'
import { closed, connackCode, connect } from '../helpers/mqtt.js'
import { SEED_FIXTURES } from '../helpers/paths.js'

const POLICY = join(SEED_FIXTURES, 'seed-policy-pubsub.json')

describe('broker: live registry changes and token expiry', () => {
  const home = tempHome()
  // The broker runs in this process, on disk; the changes come from `edgemq` child processes.
  let broker: TestHub
  const keys = new Map<string, string>()

  const token = (deviceId: string, opts: { expiry?: number } = {}) =>
    buildSasToken({ resource: deviceResource('edgemq', deviceId), key: keys.get(deviceId) as string, ...(opts.expiry ? { expiry: opts.expiry } : { durationSecs: 3600 }) })

  before(async () => {
    broker = await startTestHub({ inMemory: false, home, clockSkewSecs: 0, ports: { mqtts: null, rest: null } })
    for (const d of ['to-disable', 'to-delete', 'short']) keys.set(d, (await broker.hub.createDevice(d)).primaryKey as string)
    await broker.hub.setEdgeHub(readFileSync(POLICY, 'utf8'))
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
