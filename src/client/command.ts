/**
 * What `edgemq pub` and `edgemq sub` share on top of BaseCommand: turning the connection options
 * into MQTT.js options (with --device credentials from the home), -d/--quiet output, and stdout
 * as raw bytes.
 */
import type { Command } from '@oclif/core'

import { BaseCommand } from '../cli/base.js'
import { EdgeMqError } from '../errors.js'
import { ensureHubPki } from '../pki/index.js'
import { readBrokerState } from './broker-state.js'
import { mosquittoExitCode } from './exit-code.js'
import { deviceConnectOptions, redactPassword, resolveClientOptions, type ClientConnectOptions, type OpenOptions } from './connect.js'
import type { ConnectionOptions } from './options.js'

export abstract class ClientCommand<T extends typeof Command> extends BaseCommand<T> {
  /** -d lines go to stderr: stdout is only for messages (scripts parse it). */
  protected debugLine = (line: string): void => {
    process.stderr.write(`${line}\n`)
  }

  protected async connectOptions(conn: ConnectionOptions, kind: 'pub' | 'sub', sasDurationSecs: number): Promise<{ options: ClientConnectOptions; open: OpenOptions }> {
    let auto: ClientConnectOptions | undefined
    const brokerState = readBrokerState(this.home)
    let refusalHint: string | undefined
    if (conn.device) {
      const { registry, hub, paths } = await this.hub()
      const { deviceId, moduleId } = conn.device
      const sas = await registry.sasToken(deviceId, moduleId, { durationSecs: sasDurationSecs })
      const pki = await ensureHubPki(paths.pki, { hubName: hub.name })
      auto = deviceConnectOptions(hub.hostName, deviceId, moduleId, sas, pki.caPem, brokerState)
      refusalHint = 'the broker log (`edgemq broker start --log-level info`) says why; check the identity is enabled and allowed to connect (`edgemq policy check --op connect`)'
    }
    const options = resolveClientOptions(conn, { kind, auto, brokerState })
    if (conn.debug) {
      this.debugLine(
        `edgemq ${kind}: connecting to ${options.protocol}://${options.host}:${options.port} as "${options.clientId}" (MQTT ${options.protocolVersion === 5 ? '5' : options.protocolVersion === 3 ? '3.1' : '3.1.1'}, user ${options.username ?? '(none)'}, password ${redactPassword(options.password)})`,
      )
    }
    return { options, open: { debug: conn.debug ? this.debugLine : undefined, refusalHint } }
  }

  /** Raw bytes to stdout (payloads may be binary; this.log would re-encode them). */
  protected writeOut = (bytes: Buffer): void => {
    process.stdout.write(bytes)
  }

  protected exitCodeFor(err: EdgeMqError): number {
    return mosquittoExitCode(err)
  }

  protected async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // --quiet (mosquitto): no error messages, only the exit code.
    const flags = this.flags as { quiet?: boolean } | undefined
    if (flags?.quiet && err instanceof EdgeMqError) this.exit(this.exitCodeFor(err))
    return super.catch(err)
  }
}
