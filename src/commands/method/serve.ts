import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, moduleFlag, pick } from '../../cli/flags.js'
import { DeviceClient } from '../../device/device-client.js'
import { execMethod } from '../../device/method-exec.js'
import { parseJsonArg } from '../../service/hub-service.js'

export default class MethodServe extends BaseCommand<typeof MethodServe> {
  static summary = 'Answer direct methods as a device or module (prints each call as a JSON line).'
  static description = 'With --exec, runs the command per call with the method name in $EDGEMQ_METHOD and the payload on stdin; its stdout (JSON) is the answer, its exit code 0 → --status, else 500.'
  static examples = [
    '<%= config.bin %> method serve --device sensor',
    '<%= config.bin %> method serve -d sensor --status 200 --payload \'{"ok": true}\' --count 1',
    '<%= config.bin %> method serve -d sensor --exec \'jq "{echo: .}"\'',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    status: Flags.integer({ summary: 'Status to answer with.', default: 200 }),
    payload: Flags.string({ summary: 'JSON answer (default: echo the request payload).' }),
    exec: Flags.string({ summary: 'Shell command that computes the answer.' }),
    count: Flags.integer({ summary: 'Exit after this many calls.', min: 1 }),
  }

  async run(): Promise<void> {
    const f = this.flags
    const fixed = f.payload === undefined ? undefined : parseJsonArg(f.payload, '--payload')
    const client = await DeviceClient.connect(await this.hub(), { deviceId: pick('device', undefined, f.device, '-d/--device'), moduleId: f.module })
    let calls = 0
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve())
      process.once('SIGTERM', () => resolve())
      void client
        .onMethod(
          (req) => {
            this.log(JSON.stringify({ method: req.name, payload: req.payload }))
            if (f.exec) return execMethod(f.exec, req, f.status)
            return { status: f.status, payload: fixed === undefined ? req.payload : fixed }
          },
          // Stop once the last answer has left (not when it is computed).
          () => {
            if (f.count && ++calls >= f.count) resolve()
          },
        )
        .then(() => {
          if (process.stderr.isTTY) this.logToStderr('serving direct methods… (Ctrl-C to stop)')
        })
    })
    await client.close()
  }
}
