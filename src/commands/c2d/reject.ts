import { C2dSettleCommand } from '../../cli/c2d-settle.js'

export default class C2dReject extends C2dSettleCommand {
  static summary = 'Reject a locked cloud-to-device message: it leaves the queue (feedback Rejected when asked for). (az iot device c2d-message reject)'
  static aliases = ['device:c2d-message:reject', 'iot:device:c2d-message:reject']
  static examples = ['<%= config.bin %> c2d reject -d sensor --etag "$(edgemq c2d receive -d sensor --lt 30 -o json | jq -r .etag)"']
  protected readonly settlement = 'reject'
}
