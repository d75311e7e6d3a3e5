/**
 * Issue 11: IoT Edge module code runs unchanged against edgemq. Two real module processes
 * (test/fixtures-local/edge-module.mjs, written against the official `azure-iot-device` SDK with
 * `ModuleClient.fromEnvironment(Mqtt)`) are started with `edgemq module run`, in both modes
 * (connection string; IOTEDGE_* + the workload API). Each: reads the module twin desired
 * properties a deployment manifest set, sends on an output that the manifest's WHERE route
 * delivers to the other module's input, receives an input fed by `module send-input`, answers a
 * direct method from `method invoke --module`. The seed's `FROM /messages/* INTO $upstream`
 * reaches `monitor`. A manifest that drops a module disconnects it; workload tokens carry the
 * lifetime the SDK asks for; sign requests with another generation id are refused.
 * The SDK always dials port 8883, so this file's broker listens there (sdk-* files run one at a
 * time: scripts/run-tests.mjs).
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'

import { startBroker, type BrokerProc } from '../helpers/broker.js'
import { BIN, cliOk, jsonOf, REPO_ROOT, runCli, tempHome } from '../helpers/cli.js'
import { manifest } from '../helpers/edge-manifest.js'

const require = createRequire(import.meta.url)
// The SDK part this file touches directly: the authentication provider `fromEnvironment` builds in workload mode.
interface EdgeAuthConfig {
  workloadUri: string
  deviceId: string
  moduleId: string
  iothubHostName: string
  authScheme: string
  gatewayHostName?: string
  generationId: string
}
interface EdgeAuthProvider {
  getDeviceCredentials(): Promise<{ sharedAccessSignature: string }>
  stop(): void
}
const { IotEdgeAuthenticationProvider } = require('azure-iot-device') as {
  IotEdgeAuthenticationProvider: new (config: EdgeAuthConfig, tokenValidTimeInSeconds?: number, tokenRenewalMarginInSeconds?: number) => EdgeAuthProvider
}

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures-local', 'edge-module.mjs')
const ROUTE_ALERTS = 'FROM /messages/modules/filter/outputs/alerts WHERE temperature > 30 INTO BrokeredEndpoint("/modules/sink/inputs/alertsIn")'
const ROUTE_UPSTREAM = 'FROM /messages/* INTO $upstream'
const DEFAULT_POLICY = { authorizations: [{ identities: ['{{iot:identity}}'], allow: [{ operations: ['mqtt:connect'] }] }] }

const home = tempHome()
let broker: BrokerProc
const running = new Set<ModuleProc>()

/** What the fixture prints, one JSON object per line. */
interface ModuleEvent {
  event: string
  module?: string
  mode?: string
  role?: string | null
  desired?: Record<string, unknown>
  input?: string
  body?: string
  props?: Record<string, string>
  message?: string
}

/** `edgemq module run … -- node edge-module.mjs`: a module process and its event lines. */
class ModuleProc {
  readonly events: ModuleEvent[] = []
  readonly exited: Promise<number>
  private stderr = ''
  private readonly waiters: { pred: (e: ModuleEvent) => boolean; resolve: (e: ModuleEvent) => void }[] = []
  private readonly proc: ChildProcess

  constructor(
    readonly moduleId: string,
    readonly mode: 'workload' | 'connection-string',
  ) {
    this.proc = spawn(process.execPath, [BIN, 'module', 'run', '--device', 'edge-gateway', '--module', moduleId, '--mode', mode, '--', process.execPath, FIXTURE], {
      cwd: REPO_ROOT,
      env: { ...process.env, EDGEMQ_HOME: home, NODE_OPTIONS: undefined, NODE_TEST_CONTEXT: undefined },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.proc.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d))
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let e: ModuleEvent
      try {
        e = JSON.parse(line) as ModuleEvent
      } catch {
        return
      }
      this.events.push(e)
      for (const w of [...this.waiters]) {
        if (w.pred(e)) {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          w.resolve(e)
        }
      }
    })
    this.exited = once(this.proc, 'exit').then(([code]) => (code as number | null) ?? -1)
    running.add(this)
    void this.exited.then(() => running.delete(this))
  }

  /** The first event (already seen or future) matching `pred`. */
  waitFor(pred: (e: ModuleEvent) => boolean, what: string, timeoutMs = 15_000): Promise<ModuleEvent> {
    const seen = this.events.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.moduleId} (${this.mode}): no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}\nstderr: ${this.stderr}`)), timeoutMs)
      this.waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) })
    })
  }

  async ready(): Promise<ModuleEvent> {
    const e = await this.waitFor((x) => x.event === 'ready' || (x.event === 'error' && x.message !== undefined && /fromEnvironment|open/.test(JSON.stringify(x))), 'ready')
    assert.equal(e.event, 'ready', `module ${this.moduleId} failed: ${JSON.stringify(e)}\n${this.stderr}`)
    return e
  }

  send(cmd: Record<string, unknown>): void {
    this.proc.stdin?.write(JSON.stringify(cmd) + '\n')
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM')
  }
}

const cli = (args: string[]) => cliOk(home, args)

function deploy(name: string, modules: string[], routes: Record<string, string>): Promise<unknown> {
  const file = join(home, name)
  const desired = { filter: { threshold: 30, unit: 'C' }, sink: { label: 'sink-1' } }
  writeFileSync(file, JSON.stringify(manifest({ modules, routes, desired: Object.fromEntries(Object.entries(desired).filter(([m]) => modules.includes(m))), edgeHubExtra: { mqttBroker: DEFAULT_POLICY } })))
  return cli(['edge', 'set-modules', '--content', file])
}

before(async () => {
  broker = await startBroker(home, ['--tls-port', '8883', '--log-level', 'debug'])
  // Applied live: the running broker picks the routes and the policy up from the change feed.
  const mark = broker.mark()
  await deploy('deployment.json', ['filter', 'sink'], { upstream: ROUTE_UPSTREAM, alerts: ROUTE_ALERTS })
  await broker.waitForLog(/"routes":2.*applied new \$edgeHub configuration/, { since: mark, timeoutMs: 15_000 })
})
after(async () => {
  for (const m of running) m.kill()
  await broker?.stop()
})

const subscribed = (moduleId: string, what: RegExp) => new RegExp(`"client":"edge-gateway/${moduleId}","subscriptions":\\[[^\\]]*${what.source}`)

for (const mode of ['workload', 'connection-string'] as const) {
  test(`ModuleClient.fromEnvironment (${mode}): twin, routed output, send-input, direct method`, async () => {
    const other = mode === 'workload' ? 'connection-string' : 'workload'
    const mark = broker.mark()
    const filter = new ModuleProc('filter', mode)
    const sink = new ModuleProc('sink', other)

    // Desired properties from the deployment manifest, and the manifest's env values.
    const fr = await filter.ready()
    assert.equal(fr.mode, mode)
    assert.equal(fr.desired?.threshold, 30)
    assert.equal(fr.desired?.unit, 'C')
    assert.equal(fr.role, 'filter')
    const sr = await sink.ready()
    assert.equal(sr.mode, other)
    assert.equal(sr.desired?.label, 'sink-1')
    // The SDK subscribes lazily once a handler is set: wait until the broker has the subscriptions.
    await broker.waitForLog(subscribed('filter', /inputs\/#/), { since: mark, timeoutMs: 15_000 })
    await broker.waitForLog(subscribed('filter', /\$iothub\/methods\/POST/), { since: mark, timeoutMs: 15_000 })
    await broker.waitForLog(subscribed('sink', /inputs\/#/), { since: mark, timeoutMs: 15_000 })

    // An input fed by `module send-input`, as edgeHub would deliver it.
    await cli(['module', 'send-input', '--module', 'filter', '--input', 'control', '--data', '{"cmd":"hello"}', '--props', 'source=script'])
    const input = await filter.waitFor((e) => e.event === 'input' && e.input === 'control', 'input on "control"')
    assert.equal(input.body, '{"cmd":"hello"}')
    assert.equal(input.props?.source, 'script')

    // A direct method from `method invoke --module`.
    const inv = jsonOf<{ status: number; payload: { echo: { n: number }; module: string; mode: string } }>(
      await cli(['method', 'invoke', '--device', 'edge-gateway', '--module', 'filter', '--method', 'echo', '--payload', '{"n": 1}', '--timeout', '10']),
    )
    assert.equal(inv.status, 200)
    assert.deepEqual(inv.payload, { echo: { n: 1 }, module: 'filter', mode })

    // Outputs: the WHERE route delivers only temperature > 30 to sink's input; `monitor` shows the
    // module output (with the routing decision at debug) and, by the seed's route, the $upstream event.
    const alert = (temperature: number, tag: string) => filter.send({ cmd: 'send', output: 'alerts', body: { temperature, tag }, props: { temperature } })
    if (mode === 'workload') {
      let done = false
      const monOut = runCli(['monitor', '--module', 'filter', '--output-name', 'alerts', '--message-count', '1', '--timeout', '20', '--log-level', 'debug'], { home })
      const monUp = runCli(['monitor', '--device', 'edge-gateway', '--module', 'filter', '--message-count', '1', '--timeout', '20', '--props'], { home })
      const both = Promise.all([monOut, monUp]).then((r) => ((done = true), r))
      // monitor is streaming once it has connected; resend until both saw one (no readiness signal to wait on).
      for (let i = 0; i < 60 && !done; i++) {
        alert(36, 'probe')
        await Promise.race([both, new Promise((r) => setTimeout(r, 250))])
      }
      const [out, up] = await both
      assert.equal(out.code, 0, out.stderr)
      const outEv = JSON.parse(out.stdout.trim().split('\n')[0]) as { event: { origin: string; module: string; output: string; payload: { temperature: number } } }
      assert.deepEqual([outEv.event.origin, outEv.event.module, outEv.event.output, outEv.event.payload.temperature], ['edge-gateway', 'filter', 'alerts', 36])
      assert.match(out.stderr, /edge-gateway\/filter output "alerts" routed to \$upstream, sink\/alertsIn/)
      assert.equal(up.code, 0, up.stderr)
      const upEv = JSON.parse(up.stdout.trim().split('\n')[0]) as { event: { origin: string; module: string; properties: { application: Record<string, string> } } }
      assert.deepEqual([upEv.event.origin, upEv.event.module, upEv.event.properties.application.temperature], ['edge-gateway', 'filter', '36'])
    }
    alert(25, 'final-cold')
    alert(37, 'final-hot')
    const got = await sink.waitFor((e) => e.event === 'input' && e.body?.includes('final-hot') === true, 'the routed alert')
    assert.equal(got.input, 'alertsIn')
    assert.equal(got.props?.temperature, '37')
    // QoS 1 from one publisher over one route arrives in order: had 25 passed the WHERE, it would be here.
    const delivered = sink.events.filter((e) => e.event === 'input').map((e) => (JSON.parse(e.body ?? '{}') as { temperature: number }).temperature)
    assert.ok(delivered.every((t) => t > 30), `only alerts above 30 reach sink: ${delivered.join(', ')}`)
    await broker.waitForLog(/"from":"edge-gateway\/filter","output":"alerts","sinks":\["\$upstream"\],"msg":"routed message"/, { since: mark, timeoutMs: 15_000 })

    // `module run` exits with the module's exit code.
    filter.send({ cmd: 'exit', code: 7 })
    assert.equal(await filter.exited, 7)
    sink.kill()
    await sink.exited
  })
}

test('workload API on the broker: tokens carry the lifetime the SDK asks for; another generation id is refused', async () => {
  const env = jsonOf<Record<string, string>>(await cli(['module', 'env', '--module', 'filter', '--mode', 'workload', '-o', 'json']))
  assert.equal(env.IOTEDGE_AUTHSCHEME, 'sasToken')
  assert.equal(env.IOTEDGE_GATEWAYHOSTNAME, 'localhost')
  assert.match(env.IOTEDGE_WORKLOADURI, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  const config: EdgeAuthConfig = {
    workloadUri: env.IOTEDGE_WORKLOADURI,
    deviceId: env.IOTEDGE_DEVICEID,
    moduleId: env.IOTEDGE_MODULEID,
    iothubHostName: env.IOTEDGE_IOTHUBHOSTNAME,
    authScheme: env.IOTEDGE_AUTHSCHEME,
    gatewayHostName: env.IOTEDGE_GATEWAYHOSTNAME,
    generationId: env.IOTEDGE_MODULEGENERATIONID,
  }
  const provider = new IotEdgeAuthenticationProvider(config, 600, 60)
  try {
    const { sharedAccessSignature } = await provider.getDeviceCredentials()
    const se = Number(new URLSearchParams(sharedAccessSignature.replace(/^SharedAccessSignature /, '')).get('se'))
    assert.ok(Math.abs(se - (Date.now() / 1000 + 600)) < 10, `se=${se} is ~600 s from now`)
    const decoded = jsonOf<{ signature: string; resource: string }>(await cli(['sas', 'decode', sharedAccessSignature, '--device', 'edge-gateway', '--module', 'filter']))
    assert.equal(decoded.signature, 'valid')
    assert.equal(decoded.resource, 'edgemq.azure-devices.net/devices/edge-gateway/modules/filter')
  } finally {
    provider.stop()
  }
  // The SDK with a generation id that is not the module's (another module's, or a stale one) gets no token.
  const sinkGen = jsonOf<Record<string, string>>(await cli(['module', 'env', '--module', 'sink', '--mode', 'workload', '-o', 'json'])).IOTEDGE_MODULEGENERATIONID
  for (const generationId of [sinkGen, '000000000000000000']) {
    const bad = new IotEdgeAuthenticationProvider({ ...config, generationId }, 600, 60)
    try {
      await assert.rejects(bad.getDeviceCredentials(), (err: Error) => /Module not found|404|Not ?Found/i.test(`${err.message} ${err.name}`))
    } finally {
      bad.stop()
    }
  }
  const res = await fetch(`${env.IOTEDGE_WORKLOADURI}modules/sink/genid/${env.IOTEDGE_MODULEGENERATIONID}/sign?api-version=2018-06-28`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ keyId: 'primary', algo: 'HMACSHA256', data: Buffer.from('x').toString('base64') }),
  })
  assert.equal(res.status, 404)
  assert.match(((await res.json()) as { message: string }).message, /^Module not found/)
})

test('a manifest that drops a module deletes it and disconnects its client', async () => {
  const sink = new ModuleProc('sink', 'workload')
  await sink.ready()
  const mark = broker.mark()
  await deploy('deployment-2.json', ['filter'], { upstream: ROUTE_UPSTREAM })
  await sink.waitFor((e) => e.event === 'disconnect' || e.event === 'error', 'disconnect', 10_000)
  await broker.waitForLog(/module \\?"edge-gateway\/sink\\?" was deleted.*closing session/, { since: mark, timeoutMs: 15_000 })
  const mods = jsonOf<{ moduleId: string }[]>(await cli(['module', 'list', '--device', 'edge-gateway']))
  assert.deepEqual(mods.map((m) => m.moduleId).sort(), ['$edgeAgent', '$edgeHub', 'filter'])
  sink.kill()
  await sink.exited
})
