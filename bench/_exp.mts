import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openHub } from '../src/config/home.js'
import { startEdgeBroker } from '../src/broker/broker.js'
import { setEdgeHubDesired, defaultPolicyDocument } from '../src/service/edgehub.js'
import { connect } from 'mqtt'
const home = mkdtempSync(join(tmpdir(), 'exp-'))
const ctx = await openHub({ home, inMemory: true, createDefault: true })
await ctx.registry.createDevice({ deviceId: 'd1' })
await setEdgeHubDesired(ctx, defaultPolicyDocument())
const broker = await startEdgeBroker({ home, inMemory: true, context: ctx, port: 0, tlsPort: null, logLevel: 'info' })
console.log(broker.ports)
const sas = await ctx.registry.sasToken('d1', undefined, {})
const c = connect({ host: '127.0.0.1', port: broker.ports.mqtt, clientId: 'd1', username: 'edgemq.azure-devices.net/d1/?api-version=2021-04-12', password: sas, reconnectPeriod: 0 })
await new Promise((r) => c.once('connect', r))
c.on('message', (t, p) => console.log('MSG', t, p.toString()))
c.on('close', () => console.log('CLOSED'))
await c.subscribeAsync('$iothub/twin/res/#')
c.publish('$iothub/twin/GET/?rid=7', '')
await new Promise((r) => setTimeout(r, 300))
c.publish('$iothub/twin/GET/?rid=8/#', '', (e) => console.log('pub cb', e?.message))
await new Promise((r) => setTimeout(r, 500))
await broker.close()
