import { C2dSettleCommand } from '../../cli/c2d-settle.js'

export default class C2dComplete extends C2dSettleCommand {
  static summary = 'Complete a locked cloud-to-device message: it leaves the queue (feedback Success when asked for). (az iot device c2d-message complete)'
  static aliases = ['device:c2d-message:complete', 'iot:device:c2d-message:complete']
  static examples = ['<%= config.bin %> c2d complete -d sensor --etag "$(edgemq c2d receive -d sensor --lt 30 -o json | jq -r .etag)"']
  protected readonly settlement = 'complete'
}
