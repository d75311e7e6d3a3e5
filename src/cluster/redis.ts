/**
 * Redis connections for the cluster: one place that parses `redis://[:password@]host:port[/db]`,
 * connects with a bounded first attempt (a clear error within seconds instead of a hang), and
 * then reconnects forever with a capped backoff so a Redis restart is ridden out.
 */
import { Redis, type RedisOptions } from 'ioredis'

import { EdgeMqError, UsageError } from '../errors.js'

export interface RedisTarget {
  url: string
  host: string
  port: number
  db: number
  /** The URL without its password, for messages and `broker status`. */
  display: string
}

export function parseRedisUrl(url: string): RedisTarget {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new UsageError(`"${url}" is not a Redis URL`, 'use redis://host:port[/db] (or redis://:password@host:port/db)')
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UsageError(`"${url}" is not a Redis URL (scheme ${u.protocol})`, 'use redis://host:port[/db] (or rediss:// for TLS)')
  }
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) throw new UsageError(`bad Redis database "${u.pathname.slice(1)}" in ${url}`, 'the path is a database number, e.g. redis://localhost:6379/0')
  const port = u.port ? Number(u.port) : 6379
  const display = `${u.protocol}//${u.hostname}:${port}/${db}`
  return { url, host: u.hostname, port, db, display }
}

export interface ConnectRedisOptions {
  /** ioredis keyPrefix (aedes-persistence-redis keys live under the hub's prefix). */
  keyPrefix?: string
  /** First-connection budget; the error names the cause (refused, WRONGPASS, timeout). */
  connectTimeoutMs?: number
  /** Connection name shown in CLIENT LIST. */
  name?: string
}

/** Backoff between reconnects: 100 ms, 200 ms … capped at 1 s, forever. */
export function retryDelay(attempt: number): number {
  return Math.min(attempt * 100, 1000)
}

export function redisOptions(opts: ConnectRedisOptions = {}): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: opts.connectTimeoutMs ?? 3000,
    // A command waits for Redis to come back rather than failing: a restart must not drop work.
    maxRetriesPerRequest: null,
    retryStrategy: retryDelay,
    enableOfflineQueue: true,
    ...(opts.keyPrefix ? { keyPrefix: opts.keyPrefix } : {}),
    ...(opts.name ? { connectionName: opts.name } : {}),
  }
}

function explain(target: RedisTarget, reason: string): EdgeMqError {
  if (/WRONGPASS|invalid password|invalid username-password/i.test(reason)) {
    return new EdgeMqError(`Redis at ${target.display} refused the credentials: ${reason}`, {
      hint: 'check the password in the URL: redis://:<password>@host:port[/db] (or redis://<user>:<password>@…)',
    })
  }
  if (/NOAUTH/i.test(reason)) {
    return new EdgeMqError(`Redis at ${target.display} requires a password: ${reason}`, { hint: 'put it in the URL: redis://:<password>@host:port[/db]' })
  }
  return new EdgeMqError(`cannot reach Redis at ${target.display}: ${reason}`, {
    hint: 'check that redis-server runs there and the host/port are right (redis-cli -u <url> ping)',
  })
}

/** Connects (or throws a clear EdgeMqError within ~connectTimeoutMs); afterwards reconnects forever. */
export async function connectRedis(url: string, opts: ConnectRedisOptions = {}): Promise<Redis> {
  const target = parseRedisUrl(url)
  const redis = new Redis(url, redisOptions(opts))
  let lastError = ''
  const onError = (err: Error) => {
    lastError = err.message
  }
  redis.on('error', onError)
  const budget = (opts.connectTimeoutMs ?? 3000) + 1000
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      redis.connect(),
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${budget} ms`)), budget)
      }),
    ])
    // The ready check ran INFO; a PING proves AUTH/SELECT passed too.
    await redis.ping()
  } catch (err) {
    redis.disconnect()
    throw explain(target, lastError || (err as Error).message)
  } finally {
    clearTimeout(timer)
  }
  return redis
}
