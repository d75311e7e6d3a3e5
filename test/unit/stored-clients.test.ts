// src/broker/stored-clients.ts: a clean client with nothing on disk costs no LevelDB work, a client
// with state (found by the startup scan, or written since) still gets it from disk.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'

import { levelKeyClient } from '../../src/broker/aedes-internals.js'
import { createPersistence } from '../../src/broker/persistence.js'
import { tempHome } from '../helpers/cli.js'

interface P {
  setup(broker: unknown): Promise<void>
  addSubscriptions(c: { id: string }, subs: { topic: string; qos: number }[]): Promise<void>
  subscriptionsByClient(c: { id: string }): Promise<{ topic: string }[]>
  putWill(c: { id: string }, will: unknown): Promise<void>
  getWill(c: { id: string }): Promise<{ topic: string } | undefined>
}

test('levelKeyClient: the client id of every per-client key, none for retained messages', () => {
  assert.equal(levelKeyClient('subscriptions:dev%2Fmod:a/b'), 'dev/mod')
  assert.equal(levelKeyClient('outgoing:dev1:broker:0000000000000001'), 'dev1')
  assert.equal(levelKeyClient('will:dev%3A1'), 'dev:1')
  assert.equal(levelKeyClient('retained:a/b'), undefined)
})

test('stored clients: state written before a restart is found by the startup scan; unknown clients read nothing', async () => {
  const dir = join(tempHome(), 'persistence')
  let h = await createPersistence(dir)
  let p = h.persistence as P
  await p.setup({ id: 'b1' })
  await p.addSubscriptions({ id: 'dev/mod' }, [{ topic: 'x/#', qos: 1 }])
  await p.putWill({ id: 'w1' }, { topic: 'gone', payload: Buffer.from('x'), qos: 1, retain: false })
  assert.deepEqual((await p.subscriptionsByClient({ id: 'dev/mod' })).map((s) => s.topic), ['x/#'])
  await h.close()

  h = await createPersistence(dir)
  p = h.persistence as P
  await p.setup({ id: 'b2' })
  assert.deepEqual((await p.subscriptionsByClient({ id: 'dev/mod' })).map((s) => s.topic), ['x/#'])
  assert.equal((await p.getWill({ id: 'w1' }))?.topic, 'gone')
  assert.deepEqual(await p.subscriptionsByClient({ id: 'nobody' }), [])
  assert.equal(await p.getWill({ id: 'nobody' }), undefined)
  await h.close()
})
