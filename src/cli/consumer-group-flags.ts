/**
 * Flags of `hub consumer-group …`, as `az iot hub consumer-group …` spells them: there `-n` is the
 * consumer group's name, so the hub is named with `--hub-name` only.
 */
import { Flags } from '@oclif/core'

export const consumerGroupHubNameFlag = Flags.string({ summary: 'IoT Hub name (must be the local hub; az parity).' })
export const consumerGroupNameFlag = Flags.string({ char: 'n', aliases: ['consumer-group', 'cg'], summary: 'Consumer group name.', required: true })
export const eventHubEndpointFlag = Flags.option({ aliases: ['ehn', 'event-hub-name'], options: ['events'] as const, default: 'events', summary: 'Event Hub-compatible endpoint (IoT Hub has one: events).' })()
