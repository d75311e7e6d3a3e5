/**
 * mosquitto_pub's behaviour on MQTT.js: read the message (file/stdin) first, connect, publish,
 * wait for every acknowledgement QoS asks for, disconnect cleanly. `-l` streams: each stdin line
 * is published as it arrives (binary-safe; "\r" kept, empty lines sent empty, a last line without
 * "\n" still sent — all as mosquitto_pub 2.0 does).
 */
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'

import type { IClientPublishOptions, MqttClient } from 'mqtt'

import { EdgeMqError, UsageError } from '../errors.js'
import { openClient, type ClientConnectOptions, type OpenOptions } from './connect.js'
import type { PubOptions } from './options.js'

export interface PubIo {
  stdin: NodeJS.ReadableStream
  /** -d lines and warnings (stderr). */
  log: (line: string) => void
}

export interface PubResult {
  published: number
}

/** Reads the -f / -s payload before connecting, like mosquitto (a bad file never opens a connection). */
export async function loadPayload(opts: PubOptions, stdin: NodeJS.ReadableStream): Promise<Buffer | undefined> {
  switch (opts.source.kind) {
    case 'message':
      return opts.source.payload
    case 'null':
      return Buffer.alloc(0)
    case 'file':
      try {
        return await readFile(opts.source.path)
      } catch (err) {
        throw new UsageError(`cannot read -f file "${opts.source.path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'check the path, or use -s to read the message from stdin')
      }
    case 'stdin-file':
      return readAll(stdin)
    case 'stdin-line':
      return undefined
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks)
}

/** Splits a byte stream on "\n" only (readline would also eat "\r", mosquitto keeps it). */
export async function* lines(stream: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  let rest = Buffer.alloc(0)
  for await (const chunk of stream) {
    let buf = rest.length ? Buffer.concat([rest, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]) : typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    let nl: number
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      yield buf.subarray(0, nl)
      buf = buf.subarray(nl + 1)
    }
    rest = Buffer.from(buf)
  }
  if (rest.length > 0) yield rest
}

export async function runPub(opts: PubOptions, clientOptions: ClientConnectOptions, io: PubIo, open: OpenOptions = {}): Promise<PubResult> {
  const payload = await loadPayload(opts, io.stdin)
  const client = await openClient(clientOptions, open)
  const publishOptions: IClientPublishOptions = { qos: opts.qos, retain: opts.retain }
  if (opts.userProperties) publishOptions.properties = { userProperties: opts.userProperties }

  // A broker that drops us mid-way (e.g. an IoT Edge policy denial closes MQTT 3.1.1 sessions)
  // would leave QoS>0 publishes waiting forever: fail the whole run instead.
  let ending = false
  let onLost: (err: Error) => void = () => undefined
  const lost = new Promise<never>((_, reject) => {
    onLost = reject
  })
  lost.catch(() => undefined)
  client.on('close', () => {
    if (!ending) onLost(new EdgeMqError('the connection was lost before every message was delivered', { hint: 'the broker closed it: check its log (a policy denial closes MQTT 3.1.1 connections)' }))
  })

  let published = 0
  const pending: Array<Promise<unknown>> = []
  const publish = (buf: Buffer) => {
    published++
    const p = client.publishAsync(opts.topic, buf, publishOptions)
    p.catch(() => undefined) // surfaced by Promise.all below
    pending.push(p)
  }
  try {
    const work = (async () => {
      if (payload !== undefined) {
        for (let i = 0; i < opts.repeat; i++) {
          if (i > 0 && opts.repeatDelayMs > 0) await sleep(opts.repeatDelayMs)
          publish(payload)
        }
      } else {
        for await (const line of lines(io.stdin)) publish(line)
      }
      await Promise.all(pending)
    })()
    await Promise.race([work, lost])
  } catch (err) {
    ending = true
    client.end(true)
    if (err instanceof EdgeMqError) throw err
    throw new EdgeMqError(`publish failed: ${(err as Error).message}`)
  }
  ending = true
  await endClient(client)
  return { published }
}

/** DISCONNECT and close; never hangs on a broker that stopped answering. */
export async function endClient(client: MqttClient): Promise<void> {
  // Unref'd: the fallback timer must not keep the process alive once the DISCONNECT went out.
  await Promise.race([client.endAsync(false), sleep(2000, undefined, { ref: false }).then(() => client.end(true))])
}
