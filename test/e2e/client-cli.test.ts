// `edgemq pub` / `edgemq sub` as real processes (node bin/run.js) against an in-process aedes broker
// on free ports, side by side with the real mosquitto_sub/mosquitto_pub when installed: same bytes
// on stdout for the default format, -v and -F; mosquitto's exit codes (0, 1, CONNACK code, 27); --device over TLS.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'

import { Aedes, type AuthenticateError } from 'aedes'

import { openHub } from '../../src/config/home.js'
import { ensureHubPki } from '../../src/pki/index.js'
import { BIN, REPO_ROOT } from '../helpers/paths.js'

const HAVE_MOSQUITTO = spawnSync('mosquitto_sub', ['--help']).error === undefined

interface Done {
  code: number | null
  stdout: Buffer
  stderr: string
}

const scratch: string[] = []
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix))
  scratch.push(d)
  return d
}
// Every child gets an empty home: no ~/.edgemq is read or created by these tests.
const HOME = tmp('edgemq-client-cli-')

function run(cmd: string, args: string[], opts: { stdin?: Buffer | string; env?: Record<string, string> } = {}): { done: Promise<Done> } {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, EDGEMQ_HOME: HOME, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  if (opts.stdin !== undefined) child.stdin.end(opts.stdin)
  else child.stdin.end()
  const done = new Promise<Done>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }))
  })
  // Never leave a child behind if a test fails half-way.
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000)
  void done.then(() => clearTimeout(kill))
  return { done }
}
const edgemq = (args: string[], opts?: { stdin?: Buffer | string; env?: Record<string, string> }) => run(process.execPath, [BIN, ...args], opts)
const errorLines = (d: Done) => d.stderr.split('\n').filter((l) => l.startsWith('error:'))

let broker: Aedes
let plain: net.Server
let port = 0
const subscribed = new Map<string, (() => void)[]>()
const seenSubscribers = new Set<string>()
const publishedOn = new Map<string, number>()
const tlsClients = new Set<string>()
let deviceCheck: ((clientId: string, username: string | undefined, password: string | undefined) => boolean) | undefined

/** Resolves once a client with this id has subscribed (so a publish after it is not lost). */
function whenSubscribed(id: string): Promise<void> {
  if (seenSubscribers.has(id)) return Promise.resolve()
  return new Promise((resolve) => subscribed.set(id, [...(subscribed.get(id) ?? []), resolve]))
}

const listen = (server: net.Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)))

before(async () => {
  broker = await Aedes.createBroker()
  broker.authenticate = (client, username, password, done) => {
    const refuse = () => done(Object.assign(new Error('not authorised'), { returnCode: 5 }) as AuthenticateError, false)
    if (username === 'bad') return refuse()
    if (deviceCheck && client.id.startsWith('dev') && !deviceCheck(client.id, username, password?.toString())) return refuse()
    if ((client.conn as { encrypted?: boolean }).encrypted) tlsClients.add(client.id)
    done(null, true)
  }
  broker.on('subscribe', (_subs, client) => {
    if (!client) return
    seenSubscribers.add(client.id)
    for (const r of subscribed.get(client.id) ?? []) r()
    subscribed.delete(client.id)
  })
  broker.on('publish', (packet, client) => {
    if (client) publishedOn.set(packet.topic, (publishedOn.get(packet.topic) ?? 0) + 1)
  })
  plain = net.createServer(broker.handle)
  port = await listen(plain)
})

after(async () => {
  await new Promise<void>((resolve) => plain.close(() => resolve()))
  await new Promise<void>((resolve) => broker.close(() => resolve()))
  for (const d of scratch) rmSync(d, { recursive: true, force: true })
})

const P = () => ['-h', '127.0.0.1', '-p', String(port)]

describe('output parity with mosquitto_sub', () => {
  test('default, -v and -F "%t %p %q %r" print the same bytes for text, empty, binary and QoS 2 messages', async () => {
    const variants: Array<[string, string[]]> = [
      ['def', []],
      ['v', ['-v']],
      ['F', ['-F', '%t %p %q %r', '-q', '2']],
    ]
    const ours = variants.map(([name, extra]) => edgemq(['sub', ...P(), '-i', `e-${name}`, '-t', 'par/#', '-C', '4', ...extra]))
    const theirs = HAVE_MOSQUITTO ? variants.map(([name, extra]) => run('mosquitto_sub', [...P(), '-i', `m-${name}`, '-t', 'par/#', '-C', '4', ...extra])) : []
    await Promise.all([...variants.map(([n]) => whenSubscribed(`e-${n}`)), ...(HAVE_MOSQUITTO ? variants.map(([n]) => whenSubscribed(`m-${n}`)) : [])])

    const binary = Buffer.from([0x78, 0x00, 0xff, 0x0a])
    for (const args of [['-t', 'par/a', '-m', 'hello'], ['-t', 'par/b', '-n'], ['-t', 'par/c', '-s', '-q', '1'], ['-t', 'par/d', '-m', 'two words', '-q', '2']]) {
      const r = await edgemq(['pub', ...P(), ...args], { stdin: args.includes('-s') ? binary : undefined }).done
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.length, 0)
    }
    const expected = [
      Buffer.concat([Buffer.from('hello\n'), binary, Buffer.from('\ntwo words\n')]),
      Buffer.concat([Buffer.from('par/a hello\npar/b (null)\npar/c '), binary, Buffer.from('\npar/d two words\n')]),
      Buffer.concat([Buffer.from('par/a hello 0 0\npar/b  0 0\npar/c '), binary, Buffer.from(' 1 0\npar/d two words 2 0\n')]),
    ]
    const got = await Promise.all(ours.map((o) => o.done))
    for (const [i, g] of got.entries()) {
      assert.equal(g.code, 0, g.stderr)
      assert.equal(g.stderr, '')
      assert.deepEqual(g.stdout, expected[i], `edgemq sub ${variants[i][0]}: ${JSON.stringify(g.stdout.toString('latin1'))}`)
    }
    if (HAVE_MOSQUITTO) {
      const ref = await Promise.all(theirs.map((t) => t.done))
      for (const [i, r] of ref.entries()) {
        assert.equal(r.code, 0, r.stderr)
        assert.deepEqual(got[i].stdout, r.stdout, `${variants[i][0]}: edgemq ${JSON.stringify(got[i].stdout.toString('latin1'))} vs mosquitto ${JSON.stringify(r.stdout.toString('latin1'))}`)
      }
    }
  })

  test('mosquitto_pub → edgemq sub and edgemq pub → mosquitto_sub interoperate', { skip: !HAVE_MOSQUITTO && 'mosquitto clients not installed' }, async () => {
    const ours = edgemq(['sub', ...P(), '-i', 'e-x', '-t', 'x/1', '-C', '1', '-v'])
    const theirs = run('mosquitto_sub', [...P(), '-i', 'm-x', '-t', 'x/2', '-C', '1', '-v'])
    await Promise.all([whenSubscribed('e-x'), whenSubscribed('m-x')])
    assert.equal((await run('mosquitto_pub', [...P(), '-t', 'x/1', '-m', 'from mosquitto']).done).code, 0)
    assert.equal((await edgemq(['pub', ...P(), '-t', 'x/2', '-m', 'from edgemq']).done).code, 0)
    assert.equal((await ours.done).stdout.toString(), 'x/1 from mosquitto\n')
    assert.equal((await theirs.done).stdout.toString(), 'x/2 from edgemq\n')
  })
})

describe('sub lifecycle and exit codes', () => {
  test('-W 1 with nothing received exits 27 (as mosquitto_sub), prints nothing on stdout and one error line', async () => {
    const t0 = Date.now()
    const r = await edgemq(['sub', ...P(), '-t', 'quiet/topic', '-W', '1']).done
    assert.equal(r.code, 27)
    assert.equal(r.stdout.length, 0)
    assert.equal(errorLines(r).length, 1, r.stderr)
    assert.match(r.stderr, /timed out after 1 s/)
    assert.ok(Date.now() - t0 >= 1000)
  })

  test('-C 3 exits after three messages; pub -l sends one message per stdin line (\\r kept, empty lines empty)', async () => {
    const sub = edgemq(['sub', ...P(), '-i', 'e-c3', '-t', 'cnt', '-C', '3', '-F', '[%p]%l'])
    await whenSubscribed('e-c3')
    const pub = await edgemq(['pub', ...P(), '-t', 'cnt', '-l', '-q', '1'], { stdin: 'one\n\ntwo\r\nthree\nfour' }).done
    assert.equal(pub.code, 0, pub.stderr)
    assert.equal(publishedOn.get('cnt'), 5, 'five lines → five PUBLISH packets')
    const r = await sub.done
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.toString(), '[one]3\n[]0\n[two\r]4\n')
  })

  test('-r: a retained message reaches a later subscriber with the retain flag; -R hides it', async () => {
    const pub = await edgemq(['pub', ...P(), '-t', 'ret/x', '-m', 'kept', '-r', '-q', '1']).done
    assert.equal(pub.code, 0, pub.stderr)
    const r = await edgemq(['sub', ...P(), '-t', 'ret/#', '-C', '1', '-F', '%t %p %r']).done
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.toString(), 'ret/x kept 1\n')
    if (HAVE_MOSQUITTO) assert.deepEqual((await run('mosquitto_sub', [...P(), '-t', 'ret/#', '-C', '1', '-F', '%t %p %r']).done).stdout, r.stdout)
    const hidden = await edgemq(['sub', ...P(), '-t', 'ret/#', '-R', '-W', '1']).done
    assert.equal(hidden.code, 27)
    assert.equal(hidden.stdout.length, 0)
    const only = await edgemq(['sub', ...P(), '-t', 'ret/#', '--retained-only', '-E', '-v']).done
    assert.equal(only.code, 0)
  })

  test('-c: queued QoS 1 messages arrive after reconnect, and one past -C stays queued for the next run', async () => {
    const first = await edgemq(['sub', ...P(), '-c', '-i', 'e-pers', '-q', '1', '-t', 'pers/x', '-E']).done
    assert.equal(first.code, 0, first.stderr)
    for (const m of ['m1', 'm2']) assert.equal((await edgemq(['pub', ...P(), '-q', '1', '-t', 'pers/x', '-m', m]).done).code, 0)
    const one = await edgemq(['sub', ...P(), '-c', '-i', 'e-pers', '-q', '1', '-t', 'pers/x', '-C', '1']).done
    assert.equal(one.stdout.toString(), 'm1\n')
    const two = await edgemq(['sub', ...P(), '-c', '-i', 'e-pers', '-q', '1', '-t', 'pers/x', '-C', '1', '-W', '5']).done
    assert.equal(two.code, 0, two.stderr)
    assert.equal(two.stdout.toString(), 'm2\n')
  })

  test('-E exits 0 once subscribed; -d writes packets to stderr only, SAS-free', async () => {
    const r = await edgemq(['sub', ...P(), '-t', 'e/x', '-E', '-d', '-u', 'someone', '-P', 'SharedAccessSignature sr=a&sig=TOPSECRET&se=1']).done
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.length, 0)
    assert.match(r.stderr, /sending CONNECT/)
    assert.match(r.stderr, /received CONNACK \(0\)/)
    assert.match(r.stderr, /sending SUBSCRIBE \(Mid: \d+, Topic: e\/x, QoS: 0, Options: 0x00\)/)
    assert.doesNotMatch(r.stderr, /TOPSECRET/)
  })
})

describe('errors', () => {
  const usageCases: Array<[string, string[], RegExp]> = [
    ['-q 3', ['pub', '-t', 'x', '-m', 'a', '-q', '3'], /invalid QoS 3/],
    ['# in a pub topic', ['pub', '-t', 'a/#', '-m', 'a'], /invalid publish topic 'a\/#'/],
    ['-m and -f together', ['pub', '-t', 'x', '-m', 'a', '-f', '/etc/hostname'], /only one message source/],
    ['no message', ['pub', '-t', 'x'], /no message given/],
    ['bad -F', ['sub', '-t', 'x', '-F', '%k'], /invalid format specifier '%k'/],
    ['bad -V', ['sub', '-t', 'x', '-V', 'mqttv4'], /invalid protocol version/],
    ['sub -q 7', ['sub', '-t', 'x', '-q', '7'], /invalid QoS 7/],
    ['bad filter', ['sub', '-t', 'a/#/b'], /invalid subscription topic/],
  ]
  for (const [name, args, re] of usageCases) {
    test(`usage error (${name}) → exit 1 and exactly one error: line, before connecting`, async () => {
      // Port 1 is never an MQTT broker: a usage error must be reported without trying to connect.
      const r = await edgemq([...args, '-p', '1']).done
      assert.equal(r.code, 1, r.stderr)
      assert.equal(r.stdout.length, 0)
      const lines = errorLines(r)
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0], re)
    })
  }

  test('refused CONNECT → exit 5 (the CONNACK code, as mosquitto) with mosquitto\'s sentence (sub and pub)', async () => {
    for (const cmd of ['sub', 'pub']) {
      const args = cmd === 'sub' ? ['-t', 'x'] : ['-t', 'x', '-m', 'a']
      const r = await edgemq([cmd, ...P(), '-u', 'bad', '-P', 'pw', ...args]).done
      assert.equal(r.code, 5, r.stderr)
      assert.deepEqual(errorLines(r), ['error: Connection error: Connection Refused: not authorised.'])
      if (HAVE_MOSQUITTO) {
        const m = await run(`mosquitto_${cmd}`, [...P(), '-u', 'bad', '-P', 'pw', ...args]).done
        assert.match(m.stderr, /^Connection error: Connection Refused: not authorised\.$/m)
      }
    }
  })

  test('nobody listening → exit 1 (as mosquitto; broker not reachable)', async () => {
    const closed = net.createServer()
    const free = await listen(closed)
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const r = await edgemq(['pub', '-h', '127.0.0.1', '-p', String(free), '-t', 'x', '-m', 'a']).done
    assert.equal(r.code, 1, r.stderr)
    assert.match(errorLines(r)[0], /broker not reachable at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
  })
})

describe('TLS and --device auto-credentials', () => {
  let home: string
  let tlsServer: tls.Server
  let tlsPort = 0
  let caFile: string
  let hostName: string

  before(async () => {
    home = tmp('edgemq-client-dev-')
    const ctx = await openHub({ home, createDefault: true })
    hostName = ctx.hub.hostName
    await ctx.registry.createDevice({ deviceId: 'dev-sub' })
    await ctx.registry.createDevice({ deviceId: 'dev-pub' })
    const pki = await ensureHubPki(ctx.paths.pki, { hubName: ctx.hub.name })
    await ctx.close()
    caFile = pki.caCertPath
    tlsServer = tls.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, broker.handle)
    tlsPort = await listen(tlsServer)
    // The running broker's record: this test process plays the broker (its pid is alive).
    writeFileSync(join(home, 'broker.json'), JSON.stringify({ pid: process.pid, host: '127.0.0.1', ports: { mqtt: port, mqtts: tlsPort, control: 1 } }))
    deviceCheck = (id, username, password) =>
      username === `${hostName}/${id}/?api-version=2021-04-12` &&
      password !== undefined &&
      password.startsWith(`SharedAccessSignature sr=${encodeURIComponent(`${hostName}/devices/${id}`)}`)
  })
  after(async () => {
    deviceCheck = undefined
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()))
  })

  test('--cafile connects over TLS; without the hub CA the handshake fails with exit 1 and a hint', async () => {
    const sub = edgemq(['sub', '-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', caFile, '-i', 'tls-sub', '-t', 'tls/x', '-C', '1', '-v'])
    await whenSubscribed('tls-sub')
    assert.ok(tlsClients.has('tls-sub'))
    const pub = await edgemq(['pub', '-h', 'localhost', '-p', String(tlsPort), '--cafile', caFile, '-t', 'tls/x', '-m', 'secure']).done
    assert.equal(pub.code, 0, pub.stderr)
    assert.equal((await sub.done).stdout.toString(), 'tls/x secure\n')

    const bad = await edgemq(['pub', '-h', '127.0.0.1', '-p', String(tlsPort), '--tls-use-os-certs', '-t', 'x', '-m', 'a']).done
    assert.equal(bad.code, 1)
    assert.match(errorLines(bad)[0], /TLS handshake with 127\.0\.0\.1:\d+ failed/)
    assert.match(bad.stderr, /hint: .*--cafile/)
  })

  test('--device fills client id, IoT Hub user name, fresh SAS and TLS with the hub CA from the home', async () => {
    const sub = edgemq(['sub', '--home', home, '--device', 'dev-sub', '-t', 'dev/x', '-C', '1', '-v'])
    await whenSubscribed('dev-sub')
    assert.ok(tlsClients.has('dev-sub'), 'connected over TLS')
    const pub = await edgemq(['pub', '--home', home, '--device', 'dev-pub', '-t', 'dev/x', '-m', 'hello', '-q', '1']).done
    assert.equal(pub.code, 0, pub.stderr)
    assert.ok(tlsClients.has('dev-pub'))
    const r = await sub.done
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.toString(), 'dev/x hello\n')

    // Explicit -u overrides the auto user name (and this broker then refuses it).
    const over = await edgemq(['pub', '--home', home, '--device', 'dev-pub', '-u', 'someone-else', '-t', 'dev/x', '-m', 'a']).done
    assert.equal(over.code, 5)
    assert.deepEqual(errorLines(over), ['error: Connection error: Connection Refused: not authorised.'])

    const unknown = await edgemq(['pub', '--home', home, '--device', 'nobody', '-t', 'dev/x', '-m', 'a']).done
    assert.equal(unknown.code, 1)
    assert.match(errorLines(unknown)[0], /nobody/)
  })
})
