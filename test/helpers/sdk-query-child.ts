/**
 * Child process of test/unit/sdk-query.test.ts: the official service SDK's query API
 * (`Registry.createQuery`) against the parent's hub. A child because azure-iothub dials
 * https://localhost:443 through its own agent with no public CA option, so the hub CA must come from
 * NODE_EXTRA_CA_CERTS, which Node reads only at process start (as in sdk-service-child.ts).
 *
 * The parent has created page-00 … page-11 (tags.site = 'a' on page-01, -04, -07) and passes the
 * service connection string in HUB_SERVICE_CS and the ids it expects, in order, in HUB_ALL_IDS.
 * Prints one line per step; every failed assertion exits non-zero with the reason on stderr.
 */
import assert from 'node:assert/strict'

import service from 'azure-iothub'

async function main(): Promise<void> {
  const registry = service.Registry.fromConnectionString(process.env.HUB_SERVICE_CS as string)
  const allIds = JSON.parse(process.env.HUB_ALL_IDS as string) as string[]

  // Without WHERE: pages of 5 follow the continuation token to the end.
  const all = registry.createQuery('SELECT * FROM devices', 5)
  const ids: string[] = []
  let pages = 0
  while (all.hasMoreResults) {
    const { result } = await all.nextAsTwin()
    assert.ok(result.length <= 5, `page of ${result.length}`)
    ids.push(...result.map((t) => t.deviceId))
    assert.ok(++pages < 10, 'paging ends')
  }
  assert.deepEqual(ids, allIds)
  assert.equal(pages, Math.ceil(allIds.length / 5))
  console.log(`paged ${ids.length} twins in ${pages} pages`)

  // With WHERE on tags, pages of 2: the SDK's Twin objects are live (update goes to the hub).
  const tagged = registry.createQuery("SELECT * FROM devices WHERE tags.site = 'a'", 2)
  const first = await tagged.nextAsTwin()
  assert.deepEqual(
    first.result.map((t) => t.deviceId),
    ['page-01', 'page-04'],
  )
  assert.equal(first.message.headers['x-ms-item-type'], 'Twin')
  assert.equal(tagged.hasMoreResults, true)
  const second = await tagged.nextAsTwin()
  assert.deepEqual(
    second.result.map((t) => t.deviceId),
    ['page-07'],
  )
  assert.equal(tagged.hasMoreResults, false)
  const twin = second.result[0]
  assert.equal(twin.tags.site, 'a')
  await twin.update({ properties: { desired: { rate: 2 } } })
  assert.equal((await registry.getTwin('page-07')).responseBody.properties.desired.rate, 2)
  console.log('WHERE tags.site paged 2 + 1, twin updated')

  // An aggregate: next() gives raw rows.
  const count = await registry.createQuery("SELECT COUNT() AS n FROM devices WHERE STARTSWITH(deviceId, 'page-')").next()
  assert.deepEqual(count.result, [{ n: 12 }])
  assert.equal(count.message.headers['x-ms-item-type'], 'Raw')
  console.log('COUNT() = 12')

  // A query that does not parse: the SDK's error for a 400, with the position in the message.
  await assert.rejects(registry.createQuery('SELECT * FROM devices WHERE', 10).nextAsTwin(), (err: Error & { response?: { statusCode?: number } }) => {
    assert.equal(err.response?.statusCode, 400)
    assert.match(err.message, /position 28/)
    return true
  })
  console.log('parse error: 400')
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err))
  process.exit(1)
})
