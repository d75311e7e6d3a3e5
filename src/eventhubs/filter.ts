/**
 * The start position a receiver asks for: Event Hubs' `apache.org:selector-filter:string`, as
 * `@azure/event-hubs` writes it (eventPosition.ts getEventPositionFilter):
 *   amqp.annotation.x-opt-offset > '-1'            (earliest; '@latest' = only new events)
 *   amqp.annotation.x-opt-offset >= '1234'
 *   amqp.annotation.x-opt-sequence-number > '41'
 *   amqp.annotation.x-opt-enqueued-time > '1700000000000'   (Unix ms)
 * No filter at all starts at the end, as Event Hubs does.
 */
import { UsageError } from '../errors.js'
import type { StartPosition } from './types.js'

const FILTER = /^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>|=)\s*'([^']*)'\s*$/i

export function parseSelectorFilter(text: string | undefined): StartPosition {
  if (text === undefined || text.trim() === '') return { kind: 'offset', offset: 'latest', inclusive: false }
  const m = FILTER.exec(text)
  if (!m) throw new UsageError(`unsupported selector filter "${text}": expected amqp.annotation.x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time > or >= '<value>'`)
  const [, field, op, value] = m
  const inclusive = op !== '>'
  const num = (what: string): number => {
    if (!/^-?\d+$/.test(value)) throw new UsageError(`selector filter ${what} "${value}" is not an integer`)
    return Number(value)
  }
  switch (field.toLowerCase()) {
    case 'offset':
      if (value === '@latest') return { kind: 'offset', offset: 'latest', inclusive }
      return { kind: 'offset', offset: num('offset'), inclusive }
    case 'sequence-number':
      return { kind: 'sequence', sequenceNumber: num('sequence number'), inclusive }
    default:
      // Event Hubs compares enqueued time strictly (the SDK always sends '>').
      return { kind: 'enqueued', enqueuedTime: num('enqueued time') + (inclusive ? -1 : 0) }
  }
}
