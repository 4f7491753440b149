/**
 * [MQTT-4.7.2-1] The retained messages a SUBSCRIBE gets: a filter that starts with a wildcard
 * (`#`, `+/state`) matches no topic that starts with `$`. The retained stores match filters as
 * qlobber does, without that rule (aedes-persistence's memory store: a QlobberTrue over every
 * retained topic; the cluster: aedes-persistence-redis' HSCAN and cluster/retained-index.ts), so a
 * `#` subscriber was sent a retained `$app/state` (live messages were right: seam
 * aedes-subscribers.ts). Aedes reads `broker.persistence.createRetainedStreamCombi` when it sends
 * a SUBSCRIBE's retained messages (lib/handlers/subscribe.js); while one of the SUBSCRIBE's
 * filters starts with a wildcard, the stream it returns is filtered here: a `$` topic goes on only
 * if one of the filters matches it by the spec's rule (topicMatches). Other topics, and SUBSCRIBEs
 * without such a filter, are untouched; an error of the store's stream is the filtered stream's.
 */
import { Readable } from 'node:stream'
import type { Aedes } from 'aedes'
import { persistenceOf } from '../seam/index.js'
import { topicMatches } from './conformance-qos.js'

interface RetainedSource {
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<{ topic: string }>
}

const DOLLAR = 36
const startsWithWildcard = (filter: string): boolean => filter[0] === '#' || filter[0] === '+'

async function* keepMatching(packets: AsyncIterable<{ topic: string }>, filters: string[]): AsyncGenerator<{ topic: string }> {
  for await (const packet of packets) {
    if (packet.topic.charCodeAt(0) !== DOLLAR || filters.some((f) => topicMatches(f, packet.topic))) yield packet
  }
}

export function installRetainedDollarRule(broker: Aedes): void {
  const persistence = persistenceOf(broker) as RetainedSource
  const combi = persistence.createRetainedStreamCombi.bind(persistence)
  persistence.createRetainedStreamCombi = (patterns) => {
    const packets = combi(patterns)
    return patterns.some(startsWithWildcard) ? Readable.from(keepMatching(packets, patterns)) : packets
  }
}
