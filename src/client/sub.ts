/**
 * mosquitto_sub's behaviour on MQTT.js (sub_client.c): subscribe on CONNACK, print each message
 * in mosquitto's format, stop after -C messages, after the SUBACK with -E, at the first
 * non-retained message with --retained-only, or fail after -W seconds (edgemq: exit 4, where
 * mosquitto exits 27). stdout carries only messages; everything else goes to `io.log` (stderr).
 */
import type { IPublishPacket, MqttClient, Packet } from 'mqtt'

import { EdgeMqError, TimeoutError } from '../errors.js'
import { topicMatches } from '../policy/topic.js'
import { openClient, reasonString, type ClientConnectOptions, type OpenOptions } from './connect.js'
import { formatMessage, systemClock, type ReceivedMessage } from './format.js'
import type { SubOptions } from './options.js'
import { endClient } from './pub.js'

export interface SubIo {
  /** stdout: formatted messages, raw bytes. */
  write: (bytes: Buffer) => void
  /** stderr: -d lines, warnings, mosquitto's per-message errors. */
  log: (line: string) => void
}

export type SubStop = 'count' | 'subscribed' | 'retained-only' | 'signal'

export interface SubResult {
  /** Messages printed (the ones -C counts). */
  received: number
  reason: SubStop
}

/** MQTT.js packet → the formatter's view. */
export function toReceived(packet: IPublishPacket): ReceivedMessage {
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
  return { topic: packet.topic, payload, qos: packet.qos, retain: packet.retain, mid: packet.messageId ?? 0, properties: packet.properties }
}

export async function runSub(opts: SubOptions, clientOptions: ClientConnectOptions, io: SubIo, open: OpenOptions = {}): Promise<SubResult> {
  let resolveRun: (r: SubResult) => void = () => undefined
  let rejectRun: (e: Error) => void = () => undefined
  const result = new Promise<SubResult>((resolve, reject) => {
    resolveRun = resolve
    rejectRun = reject
  })
  let client: MqttClient | undefined
  let done = false
  let received = 0
  let lostMessage = 'the broker closed the connection'
  const pending: Array<Promise<unknown>> = []
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']
  const onSignal = () => finish({ received, reason: 'signal' })

  // -W covers the whole run, connecting included (mosquitto arms alarm() before the loop).
  const timer =
    opts.timeoutSecs === undefined
      ? undefined
      : setTimeout(() => fail(new TimeoutError(`timed out after ${opts.timeoutSecs} s (-W)${opts.count ? `: ${received} of ${opts.count} messages received` : ''}`)), opts.timeoutSecs * 1000)

  function cleanup() {
    done = true
    clearTimeout(timer)
    for (const s of signals) process.removeListener(s, onSignal)
  }
  function finish(r: SubResult) {
    if (done) return
    cleanup()
    // setImmediate: let MQTT.js write the PUBACK/PUBREC of the last message before DISCONNECT,
    // so a persistent (-c) session does not get it again next time.
    setImmediate(() => {
      void Promise.allSettled(pending)
        .then(() => (client ? endClient(client) : undefined))
        .then(() => resolveRun(r), rejectRun)
    })
  }
  function fail(err: Error) {
    if (done) return
    cleanup()
    client?.end(true)
    rejectRun(err)
  }

  // Acknowledge only what we consumed: a QoS 1 message that arrives after -C was reached must
  // stay queued in a persistent (-c) session for next time, not be PUBACKed and lost.
  // (MQTT.js emits 'message' first, then asks handleMessage whether to send the PUBACK.)
  const consumed = new WeakSet<IPublishPacket>()

  function onMessage(c: MqttClient, packet: IPublishPacket) {
    if (done) return
    const msg = toReceived(packet)
    if (opts.retainedOnly && !msg.retain) {
      finish({ received, reason: 'retained-only' })
      return
    }
    consumed.add(packet)
    if (msg.retain && opts.noRetained) return
    if (opts.filterOut.some((f) => topicMatches(f, msg.topic))) return
    if (opts.removeRetained && msg.retain) {
      const p = c.publishAsync(msg.topic, Buffer.alloc(0), { qos: 1, retain: true })
      p.catch(() => undefined)
      pending.push(p)
    }
    const bytes = formatMessage(msg, opts.output, systemClock(), io.log)
    if (bytes.length > 0) io.write(bytes)
    received++
    if (opts.count !== undefined && received >= opts.count) finish({ received, reason: 'count' })
  }

  // Installed before CONNECT goes out: a persistent session's queued messages arrive right after
  // the CONNACK, before any SUBSCRIBE, and must not slip past us (they would be PUBACKed unseen).
  const install = (c: MqttClient) => {
    client = c
    c.handleMessage = (packet, callback) => {
      if (packet.qos === 0 || consumed.has(packet)) callback()
      else callback(new Error('not consumed: left for the next session'))
    }
    c.on('message', (_topic: string, _payload: Buffer, packet: IPublishPacket) => onMessage(c, packet))
    c.on('packetreceive', (p: Packet) => {
      if (p.cmd === 'disconnect' && p.reasonCode) lostMessage = `the broker disconnected us: ${reasonString(p.reasonCode)}`
    })
  }

  for (const s of signals) process.once(s, onSignal)
  try {
    await Promise.race([openClient(clientOptions, { ...open, onClient: install }), result])
  } catch (err) {
    cleanup()
    throw err
  }
  const c = client as MqttClient | undefined
  if (done || !c) return result

  c.on('close', () => fail(new EdgeMqError(lostMessage, { hint: 'check the broker log: a policy denial or a second client with the same id closes the connection' })))
  const onSuback = (p: Packet) => {
    if (p.cmd !== 'suback') return
    c.removeListener('packetreceive', onSuback)
    const granted = p.granted.map((g: number | object) => (typeof g === 'number' ? g : Number((g as { qos?: number }).qos ?? 0x80)))
    if (open.debug) open.debug(`Subscribed (mid: ${p.messageId}): ${granted.join(', ')}`)
    const denied = granted.map((g, i) => (g >= 0x80 ? opts.topics[i] : undefined)).filter((t): t is string => t !== undefined)
    if (denied.length === granted.length) {
      // mosquitto prints the same sentence (and then exits 0); edgemq exits 1: nothing can arrive.
      fail(new EdgeMqError('All subscription requests were denied.', { code: 'SUBSCRIBE_DENIED', hint: "the broker's authorization policy does not allow these topics (`edgemq policy check --op subscribe`)" }))
      return
    }
    for (const t of denied) io.log(`warning: subscription to '${t}' was denied`)
    if (opts.exitAfterSubscribe) finish({ received, reason: 'subscribed' })
  }
  c.on('packetreceive', onSuback)
  // The callback form: a denied filter makes MQTT.js report an error we handle in onSuback.
  c.subscribe(opts.topics, { qos: opts.qos }, () => undefined)
  return result
}
