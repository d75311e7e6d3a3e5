import { C2dSettleCommand } from '../../cli/c2d-settle.js'

export default class C2dAbandon extends C2dSettleCommand {
  static summary = 'Abandon a locked cloud-to-device message: it is queued again (after its 10th delivery it is dropped instead, feedback DeliveryCountExceeded). (az iot device c2d-message abandon)'
  static aliases = ['device:c2d-message:abandon', 'iot:device:c2d-message:abandon']
  static examples = ['<%= config.bin %> c2d abandon -d sensor --etag "$(edgemq c2d receive -d sensor --lt 30 -o json | jq -r .etag)"']
  protected readonly settlement = 'abandon'
}
