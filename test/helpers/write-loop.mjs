#!/usr/bin/env node
// A process that writes to a home as fast as it can, for the kill -9 test (test/cli-crash.test.ts):
// creates devices with a module, updates them, patches twins, deletes some. It uses the compiled
// library (dist/) like the CLI does, so it exercises the same SQLite transactions.
//   node test/helpers/write-loop.mjs <home> <tag>
// Prints "ready" on stdout once the hub is open and the first write is done.
import { openHub } from '../../dist/config/home.js'

const [home, tag = String(process.pid)] = process.argv.slice(2)
const ctx = await openHub({ home, createDefault: true })
const { registry, store } = ctx
let announced = false
for (let i = 0; ; i++) {
  const id = `w-${tag}-${i}`
  await registry.createDevice({ deviceId: id })
  await registry.createModule({ deviceId: id, moduleId: 'm' })
  await registry.updateDevice(id, { status: i % 2 ? 'disabled' : 'enabled' })
  await store.updateTwin({ deviceId: id }, (t) => ({ ...t, tags: { i }, version: t.version + 1 }), 'tags')
  if (i % 3 === 2) await registry.deleteDevice(`w-${tag}-${i - 1}`)
  if (!announced) {
    process.stdout.write('ready\n')
    announced = true
  }
}
