// src/broker/stored-clients.ts: a clean client with nothing on disk costs no LevelDB work, a client
// with state (found by the startup scan, or written since) still gets it from disk.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import stream, { PassThrough, Readable, Transform } from 'node:stream'
import { test } from 'node:test'
import { promisify } from 'node:util'

import { EMPTY_OUTGOING, emptyOutgoingFastPath, emptyOutgoingStats, levelKeyClient } from '../../src/broker/aedes-internals.js'
import { createPersistence } from '../../src/broker/persistence.js'
import { buildSasToken, deviceResource } from '../../src/sas/index.js'
import { tempHome } from '../helpers/cli.js'
import { startTestHub } from '../helpers/hub.js'
import { collect, connect, subscribeOk } from '../helpers/mqtt.js'
import { SEED_FIXTURES } from '../helpers/paths.js'

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

test('empty outgoing queue: the pipeline is skipped (done on a later tick, no error); every other pipeline runs as before', async () => {
  emptyOutgoingFastPath()
  emptyOutgoingFastPath() // idempotent: one wrapper, not two
  const seen: unknown[] = []
  const through = new Transform({ objectMode: true, transform: (x, _e, cb) => (seen.push(x), cb()) })
  let sync = true
  const err = await new Promise<Error | null | undefined>((resolve) => {
    stream.pipeline(EMPTY_OUTGOING as never, through, (e) => resolve(e))
    sync = false
  })
  assert.equal(sync, false, 'done runs after pipeline() returned, as a real pipeline’s does')
  assert.equal(err, undefined)
  assert.deepEqual(seen, [])
  const { pipeline: promised } = await import('node:stream/promises')
  assert.equal(promisify(stream.pipeline), promised, 'util.promisify still gives the promise version')
  let n = 0
  for await (const _ of EMPTY_OUTGOING) n++
  assert.equal(n, 0, 'still an (empty) async iterable for the session queue counts')

  const out = new PassThrough({ objectMode: true })
  const got: unknown[] = []
  out.on('data', (x) => got.push(x))
  await new Promise<void>((resolve, reject) => stream.pipeline(Readable.from(['a', 'b']), out, (e) => (e ? reject(e) : resolve())))
  assert.deepEqual(got, ['a', 'b'])
})

test('on a real on-disk broker, aedes’ own queue drains take the fast path for stateless clients; a queued persistent session still gets its messages', async () => {
  const t = await startTestHub({ inMemory: false, home: tempHome(), ports: { mqtts: null, rest: null } })
  try {
    await t.hub.setEdgeHub(readFileSync(join(SEED_FIXTURES, 'seed-policy-pubsub.json'), 'utf8'))
    const token = async (id: string) => {
      const d = await t.hub.createDevice(id)
      return buildSasToken({ resource: deviceResource('edgemq', id), key: d.primaryKey!, durationSecs: 3600 })
    }
    const [subToken, pubToken] = [await token('sub_client'), await token('pub_client')]

    const before = emptyOutgoingStats.skipped
    const pub = await connect({ port: t.ports.mqtt, clientId: 'pub_client', password: pubToken })
    // aedes drains the queue after the CONNACK and reads nothing from the client before: a PUBACK
    // means the drain has run.
    await pub.publishAsync('test_topic', 'first', { qos: 1 })
    assert.ok(emptyOutgoingStats.skipped > before, 'the CONNECT of a client with nothing stored skipped the pipeline (aedes sees the patched export)')

    // sub_client: a persistent session, then offline while a QoS1 message is queued for it.
    const sub = await connect({ port: t.ports.mqtt, clientId: 'sub_client', password: subToken, clean: false })
    await subscribeOk(sub, 'test_topic', 1)
    await sub.endAsync()
    await pub.publishAsync('test_topic', 'queued', { qos: 1 })
    const skippedBefore = emptyOutgoingStats.skipped
    let got: Promise<{ payload: Buffer }[]> | undefined
    const back = await connect({ port: t.ports.mqtt, clientId: 'sub_client', password: subToken, clean: false, beforeConnect: (c) => (got = collect(c, 1)) })
    const [m] = await got!
    assert.equal(m.payload.toString(), 'queued')
    assert.equal(emptyOutgoingStats.skipped, skippedBefore, 'a client with stored state drains through the real pipeline')
    await back.endAsync()
    await pub.endAsync()
  } finally {
    await t.stop()
  }
})
