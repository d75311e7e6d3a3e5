import { Flags } from '@oclif/core'

import { BaseCommand } from '../../cli/base.js'
import { deviceFlag, hubTargetFlags, moduleFlag, pick } from '../../cli/flags.js'
import { UsageError } from '../../errors.js'
import { HubService, parseJsonArg } from '../../service/hub-service.js'

export default class MethodInvoke extends BaseCommand<typeof MethodInvoke> {
  static summary = 'Invoke a direct method on a connected device or module and print its answer.'
  static description = 'Prints {"status": …, "payload": …}. Exit 1 when the target is not connected (404), exit 4 when it does not answer in time (504). Needs a running broker (exit 3 otherwise).'
  static aliases = ['hub:invoke-device-method', 'hub:invoke-module-method']
  static examples = [
    '<%= config.bin %> method invoke --device sensor --method reboot --payload \'{"delay": 1}\'',
    '<%= config.bin %> hub invoke-device-method -d sensor --mn reboot --mp \'{}\' --to 30',
    '<%= config.bin %> hub invoke-module-method -d edge-gateway -m filter --mn reset',
  ]
  static flags = {
    device: deviceFlag,
    module: moduleFlag,
    method: Flags.string({ aliases: ['mn', 'method-name'], summary: 'Method name.', required: true }),
    payload: Flags.string({ aliases: ['mp', 'method-payload'], summary: 'JSON payload (or @file).', default: '{}' }),
    timeout: Flags.integer({ aliases: ['to'], summary: 'Seconds to wait for the answer (5–300, as IoT Hub).', default: 30 }),
    ...hubTargetFlags,
  }

  async run(): Promise<void> {
    const f = this.flags
    await this.checkHubName(f['hub-name'])
    if (f.timeout < 5 || f.timeout > 300) throw new UsageError('--timeout must be 5–300 seconds (IoT Hub\'s range)')
    const deviceId = pick('device', undefined, f.device, '-d/--device')
    const payload = parseJsonArg(f.payload, '--payload')
    const svc = new HubService(await this.hub())
    const spinner = process.stderr.isTTY ? (await import('ora')).default({ text: `invoking ${f.method} on ${f.module ? `${deviceId}/${f.module}` : deviceId}`, stream: process.stderr }).start() : undefined
    try {
      const r = await svc.invokeMethod(f.module ? { deviceId, moduleId: f.module } : { deviceId }, f.method, payload, f.timeout)
      spinner?.succeed(`answered with status ${r.status}`)
      this.print(r)
    } catch (err) {
      spinner?.fail()
      throw err
    }
  }
}
