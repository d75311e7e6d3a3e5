/** The load generator's two halves over MQTT.js, shared by the bench scripts; and the client interface the suite drives. */
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt'

export interface Creds {
  clientId: string
  username?: string
  password?: string
  clean?: boolean
}

/** An MQTT 3.1.1 clean-session client on 127.0.0.1:`port`, resolved on CONNACK. */
export function connectLocal(port: number, c: Creds): Promise<MqttClient> {
  const opts: IClientOptions = { host: '127.0.0.1', port, clientId: c.clientId, protocolVersion: 4, clean: c.clean ?? true, reconnectPeriod: 0 }
  if (c.username) opts.username = c.username
  if (c.password) opts.password = c.password
  const m = mqttConnect(opts)
  return new Promise((resolve, reject) => {
    m.once('connect', () => resolve(m))
    m.once('error', reject)
  })
}

/** Publishes `n` messages keeping `window` in flight (QoS1: until PUBACK; QoS0: until written). */
export function publishWindowed(pub: MqttClient, topic: string, payload: Buffer, qos: 0 | 1, n: number, window: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let sent = 0
    let inflight = 0
    const pump = () => {
      while (inflight < window && sent < n) {
        inflight++
        sent++
        pub.publish(topic, payload, { qos }, (err) => {
          if (err) return reject(err)
          inflight--
          if (sent < n) pump()
          else if (inflight === 0) resolve()
        })
      }
    }
    if (n === 0) resolve()
    else pump()
  })
}

export interface Collected {
  received(): number
  /** performance.now() of the last message (0 when none). */
  lastAt(): number
  /** Resolves once `n` arrived, or nothing arrived for `idleMs` (QoS0 may drop under load). */
  done: Promise<void>
}

export function collectMessages(sub: MqttClient, n: number, idleMs = 2000, firstMs = 10_000): Collected {
  let received = 0
  let lastAt = 0
  const done = new Promise<void>((resolve) => {
    let idle = setTimeout(resolve, firstMs)
    sub.on('message', () => {
      received++
      lastAt = performance.now()
      clearTimeout(idle)
      if (received >= n) resolve()
      else idle = setTimeout(resolve, idleMs)
    })
  })
  return { received: () => received, lastAt: () => lastAt, done }
}

/** What the suite drives: a connected client that subscribes, publishes with a window and counts what it receives. */
export interface LoadClient {
  /** performance.now() of the last PUBLISH received (0 when none). */
  readonly lastAt: number
  /** Called with the number of PUBLISHes that just arrived. */
  onPublishes?: (n: number) => void
  /** Called with each PUBLISH's payload (where a row needs them: slower). */
  onPayload?: (payload: Buffer) => void
  subscribe(filter: string, qos: 0 | 1): Promise<void>
  publishWindowed(topic: string, payload: Buffer, qos: 0 | 1, n: number, window: number): Promise<void>
  /** One PUBLISH, not waited for (its PUBACK is ignored). */
  publishOne(topic: string, payload: Buffer, qos: 0 | 1): void
  end(): Promise<void>
}

/** The suite's generator over MQTT.js (BENCH_GENERATOR=mqttjs): what it used before the raw client, kept to compare. */
export async function mqttJsLoadClient(port: number, c: Creds): Promise<LoadClient> {
  const m = await connectLocal(port, c)
  const client = {
    lastAt: 0,
    onPublishes: undefined as ((n: number) => void) | undefined,
    onPayload: undefined as ((payload: Buffer) => void) | undefined,
    subscribe: async (filter: string, qos: 0 | 1) => void (await m.subscribeAsync(filter, { qos })),
    publishWindowed: (topic: string, payload: Buffer, qos: 0 | 1, n: number, window: number) => publishWindowed(m, topic, payload, qos, n, window),
    publishOne: (topic: string, payload: Buffer, qos: 0 | 1) => void m.publish(topic, payload, { qos }),
    end: () => m.endAsync(),
  }
  m.on('message', (_topic, payload) => {
    client.lastAt = performance.now()
    client.onPublishes?.(1)
    client.onPayload?.(payload)
  })
  return client
}
