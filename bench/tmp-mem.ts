import { connect as netConnect, type Socket } from 'node:net'
import { readdirSync, statSync } from 'node:fs'
import { startBroker, stopBroker, credentials, rssOf } from './lib/brokers.js'
import { connectPacket } from '../test/helpers/raw-socket.js'
const N = Number(process.env.N ?? 3000)
const kind = (process.env.KIND ?? 'edgemq-mem') as never
const b = await startBroker(kind, { devices: N })
const snaps = () => readdirSync('/work/main').filter((f) => f.endsWith('.heapsnapshot'))
async function snap() {
  const n = snaps().length
  b.child.kill('SIGUSR1')
  for (;;) { await new Promise((r) => setTimeout(r, 500)); const s = snaps(); if (s.length > n) { const f = s.sort().at(-1)!; const sz = statSync(f).size; await new Promise((r) => setTimeout(r, 1500)); if (statSync(f).size === sz) return f } }
}
await b.collectGarbage(); const r0 = rssOf(b.pid)
if (process.env.SNAP) console.log('snap1', await snap())
const sockets: Socket[] = []
for (let i = 0; i < N; i++) {
  const o = credentials(b, `dev${i}`)
  const p = connectPacket(`dev${i}`, o.password === undefined ? undefined : String(o.password), { keepalive: 0, ...(o.username ? { username: o.username } : {}) })
  sockets.push(await new Promise<Socket>((res, rej) => { const s = netConnect(b.port, '127.0.0.1', () => s.write(p)); s.once('data', (d) => (d[3] === 0 ? res(s) : rej(new Error('refused')))) }))
}
await new Promise((r) => setTimeout(r, 1000))
await b.collectGarbage(); const r1 = rssOf(b.pid)
console.log(kind, 'bytes/conn', Math.round((r1 - r0) / N))
if (process.env.SNAP) console.log('snap2', await snap())
for (const s of sockets) s.destroy()
await stopBroker(b)
