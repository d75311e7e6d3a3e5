/** The load generator's two halves, shared by the bench scripts. */
import type { MqttClient } from 'mqtt'

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
