/**
 * Two in-process hubs (startHub()) wired as parent and child through `$upstream`, the way
 * `hub set-upstream` does it: the child's edge device on the parent, the parent's CA in a file.
 *
 *   const { parent, child } = await hubPair(t, { parentPolicy, bridges: [{ direction: 'out', topic: '#' }] })
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'

import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'

import { parseUpstreamConnectionString } from '../../src/bridge/upstream.js'
import { startHub, type Hub, type HubPolicy } from '../../src/emulator/index.js'
import type { JsonObject } from '../../src/policy/index.js'
import type { BrokerSettings } from '../../src/registry/types.js'
import { connect, iothubUsername } from './mqtt.js'

export interface HubPairOptions {
  /** The parent's authorizations (the child edge device is `child-edge`). */
  parentPolicy: HubPolicy
  /** `mqttBroker.bridges[0].settings` on the child. */
  settings: JsonObject[]
  /** Extra devices on each side. */
  parentDevices?: string[]
  childDevices?: string[]
  /** Broker settings of the child (e.g. a short `bridgeBackoffMs`, so a test does not wait out real backoff). */
  childSettings?: Partial<BrokerSettings>
  /** The child's broker logger (e.g. captureLog().logger, to assert on what the bridge logs). */
  childLogger?: Logger
}

/** Polls `ok` every 25 ms (the bridge's state has no event a test can wait on); fails after `timeoutMs`. */
export async function waitFor(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** A device of `hub` on its plain MQTT port (closed when the test ends). */
export async function deviceOf(t: TestContext, hub: Hub, id: string): Promise<MqttClient> {
  const c = await connect({ port: hub.ports.mqtt as number, clientId: id, password: await hub.sas(id), username: iothubUsername(id, hub.hostName) })
  t.after(() => c.endAsync(true))
  return c
}

export async function hubPair(t: TestContext, o: HubPairOptions): Promise<{ parent: Hub; child: Hub }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-hub-pair-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const parent = await startHub({ hubName: 'parenthub', policy: o.parentPolicy })
  t.after(() => parent.close())
  await parent.createDevice('child-edge', { edge: true })
  for (const d of o.parentDevices ?? []) await parent.createDevice(d)
  const child = await startHub({ hubName: 'childhub', policy: 'allow-all', ...(o.childLogger ? { logger: o.childLogger } : {}), ...(o.childSettings ? { settings: o.childSettings } : {}) })
  t.after(() => child.close())
  for (const d of o.childDevices ?? []) await child.createDevice(d)
  const caFile = join(dir, 'parent-ca.pem')
  writeFileSync(caFile, parent.caPem)
  const cs = await parent.deviceConnectionString('child-edge', { gateway: 'localhost' })
  const upstream = parseUpstreamConnectionString(cs, { port: parent.ports.mqtts, caFile })
  await child.context.store.updateHub((h) => ({ ...h, upstream }))
  Object.assign(child.context.hub, { upstream })
  await child.setEdgeHub({ mqttBroker: { bridges: [{ endpoint: '$upstream', settings: o.settings }] } })
  await waitFor('the bridge connected', () => child.broker.bridge.status().state === 'connected')
  return { parent, child }
}
