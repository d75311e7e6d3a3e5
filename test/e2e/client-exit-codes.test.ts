/**
 * "Same exit codes" as mosquitto (README, PRODUCT.md "Exit codes"; issue 17): the real
 * mosquitto_pub / mosquitto_sub and `edgemq pub` / `edgemq sub`, each as a process, against edgemq's
 * own broker (startHub, in process) refusing them: CONNACK 5 (no policy lets anyone connect),
 * CONNACK 4 (bad SAS, unregistered device), nobody listening, and sub -W running out.
 * Each case asserts the expected number and that both tools agree.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { after, before, describe, test } from 'node:test'

import { startHub, type Hub } from '../../src/emulator/index.js'
import { BIN, REPO_ROOT } from '../helpers/paths.js'
import { freePort } from '../helpers/ports.js'

const HAVE_MOSQUITTO = spawnSync('mosquitto_sub', ['--help']).error === undefined

interface Done {
  code: number | null
  stderr: string
}

function run(cmd: string, args: string[]): Promise<Done> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: undefined, NODE_TEST_CONTEXT: undefined }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(kill)
      resolve({ code, stderr })
    })
  })
}

/** Runs `mosquitto_<tool>` and `edgemq <tool>` with the same arguments (one after the other: 2 cores). */
async function both(tool: 'pub' | 'sub', args: string[]): Promise<{ mosquitto: Done; edgemq: Done }> {
  const extra = tool === 'pub' ? ['-m', 'x'] : ['-C', '1', '-W', '2']
  const mosquitto = await run(`mosquitto_${tool}`, [...args, ...extra])
  const edgemq = await run(process.execPath, [BIN, tool, ...args, ...extra])
  return { mosquitto, edgemq }
}

describe('pub/sub exit codes are mosquitto_pub/mosquitto_sub\'s', { skip: HAVE_MOSQUITTO ? false : 'mosquitto clients not installed' }, () => {
  let refusing: Hub // no policy: IoT Edge refuses every CONNECT (not authorised)
  let open: Hub // allow-all
  const user = (hub: Hub, id: string) => `${hub.hostName}/${id}/?api-version=2018-06-30`
  const common = (hub: Hub, id: string, password: string, port = hub.ports.mqtt) => ['-t', 'exit/codes', '-i', id, '-u', user(hub, id), '-P', password, '-h', '127.0.0.1', '-V', 'mqttv311', '-p', String(port)]

  before(async () => {
    refusing = await startHub({ ports: { mqtts: null, rest: null }, policy: 'none' })
    open = await startHub({ ports: { mqtts: null, rest: null }, policy: 'allow-all' })
    await refusing.createDevice('d1')
    await open.createDevice('d1')
  })
  after(async () => {
    await refusing?.close()
    await open?.close()
  })

  for (const tool of ['pub', 'sub'] as const) {
    test(`${tool}: CONNACK 5 (not authorised) → exit 5`, async () => {
      const r = await both(tool, common(refusing, 'd1', await refusing.sas('d1')))
      assert.equal(r.mosquitto.code, 5, r.mosquitto.stderr)
      assert.equal(r.edgemq.code, 5, r.edgemq.stderr)
      assert.match(r.edgemq.stderr, /Connection Refused: not authorised\./)
    })

    test(`${tool}: CONNACK 4 (bad user name or password: a wrong SAS) → exit 4`, async () => {
      const wrong = await both(tool, common(open, 'd1', 'SharedAccessSignature sr=x&sig=bad&se=1'))
      assert.equal(wrong.mosquitto.code, 4, wrong.mosquitto.stderr)
      assert.equal(wrong.edgemq.code, 4, wrong.edgemq.stderr)
      assert.match(wrong.edgemq.stderr, /bad user name or password/)
    })

    test(`${tool}: an unregistered device → the CONNACK code, the same for both`, async () => {
      const nobody = await both(tool, common(open, 'nobody', await open.sas('d1')))
      assert.ok(nobody.mosquitto.code === 4 || nobody.mosquitto.code === 5, nobody.mosquitto.stderr)
      assert.equal(nobody.edgemq.code, nobody.mosquitto.code, nobody.edgemq.stderr)
    })

    test(`${tool}: nobody listening (connection refused) → exit 1`, async () => {
      const r = await both(tool, common(open, 'd1', await open.sas('d1'), await freePort()))
      assert.equal(r.mosquitto.code, 1, r.mosquitto.stderr)
      assert.equal(r.edgemq.code, 1, r.edgemq.stderr)
      assert.match(r.edgemq.stderr, /not reachable/)
    })
  }

  test('sub -W running out → exit 27', async () => {
    const r = await both('sub', common(open, 'd1', await open.sas('d1')))
    assert.equal(r.mosquitto.code, 27, r.mosquitto.stderr)
    assert.equal(r.edgemq.code, 27, r.edgemq.stderr)
  })
})
