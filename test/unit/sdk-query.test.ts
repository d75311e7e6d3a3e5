/**
 * The official service SDK's query API against an in-process hub (issue 17): `azure-iothub`
 * `Registry.createQuery(sql, pageSize)` with and without WHERE, `nextAsTwin()` paging across
 * continuation tokens (POST /devices/query, x-ms-max-item-count / x-ms-continuation), an aggregate
 * through `next()`, and a bad query as the SDK's 400 error. The SDK runs in a child
 * (helpers/sdk-query-child.ts) for the CA trust; it dials https://localhost:443, so this is an
 * sdk-* file (run alone).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { startHub } from '../../src/emulator/index.js'
import { helperScript } from '../helpers/paths.js'

const CHILD = helperScript('sdk-query-child')

test('azure-iothub Registry.createQuery: paging with continuation, WHERE, COUNT(), parse error', async () => {
  const hub = await startHub({ ports: { mqtt: null, mqtts: null, rest: 443 } })
  const dir = mkdtempSync(join(tmpdir(), 'edgemq-sdk-query-'))
  try {
    for (let i = 0; i < 12; i++) await hub.createDevice(`page-${String(i).padStart(2, '0')}`)
    for (const id of ['page-01', 'page-04', 'page-07']) await hub.updateTwin(id, { tags: { site: 'a' } })
    const allIds = (await hub.query('SELECT deviceId FROM devices')).map((r) => r.deviceId)
    assert.equal(allIds.length, 13) // 12 + the hub's edge device
    const caFile = join(dir, 'hub-ca.pem')
    writeFileSync(caFile, hub.caPem)
    const child = spawn(process.execPath, [...CHILD.execArgv, CHILD.path], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, NODE_OPTIONS: undefined, NODE_EXTRA_CA_CERTS: caFile, HUB_SERVICE_CS: hub.serviceConnectionString(), HUB_ALL_IDS: JSON.stringify(allIds) },
    })
    let output = ''
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()))
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    const [code] = (await once(child, 'exit')) as [number | null]
    clearTimeout(timer)
    assert.equal(code, 0, `SDK query flow failed:\n${output}`)
    assert.match(output, /paged 13 twins in 3 pages/)
    assert.match(output, /parse error: 400/)
    // The SDK's Twin.update from a query result reached the hub.
    assert.equal((await hub.getTwin('page-07')).properties.desired.rate, 2)
  } finally {
    await hub.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
