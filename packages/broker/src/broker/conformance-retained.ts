/**
 * The retained messages a SUBSCRIBE gets, as Aedes streams them (lib/handlers/subscribe.js reads
 * `broker.persistence.createRetainedStreamCombi` at each SUBSCRIBE and pipes the stream it
 * returns; docs/internals.md row A30). Every such stream goes through here:
 *
 * - [MQTT-4.7.2-1] a filter that starts with a wildcard (`#`, `+/state`) matches no topic that
 *   starts with `$`. The retained stores match filters as qlobber does, without that rule
 *   (aedes-persistence-redis' HSCAN and cluster/retained-index.ts in a cluster), so a `#`
 *   subscriber was sent a retained `$app/state` (live messages were right: seam
 *   aedes-subscribers.ts). While one of the SUBSCRIBE's filters starts with a wildcard, a `$` topic
 *   goes on only if one of the filters matches it by the spec's rule (topicMatches).
 * - Aedes pipes the stream with no 'error' listener: a store that fails while it reads (a Redis
 *   that goes away mid-read) would be an uncaught exception, which ends the process
 *   (commands/start.ts). Here the failure ends the stream with a warning: the subscription stands
 *   (its SUBACK is sent), the retained messages not read yet are not sent, and the node serves on.
 */
import { Readable } from 'node:stream'
import type { Aedes } from 'aedes'
import type { Logger } from '../log.js'
import { persistenceOf } from '../seam/index.js'
import { isDollar, topicMatches } from './topic-filter.js'

interface RetainedSource {
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<{ topic: string }>
}

const startsWithWildcard = (filter: string): boolean => filter[0] === '#' || filter[0] === '+'

async function* retainedOf(read: () => AsyncIterable<{ topic: string }>, filters: string[], log: Logger): AsyncGenerator<{ topic: string }> {
  const dollarRule = filters.some(startsWithWildcard)
  try {
    for await (const packet of read()) {
      if (!dollarRule || !isDollar(packet.topic) || filters.some((f) => topicMatches(f, packet.topic))) yield packet
    }
  } catch (err) {
    log.warn({ err: (err as Error).message, filters }, 'retained messages of a SUBSCRIBE not all sent: the store failed while reading them')
  }
}

export function installRetainedStreams(broker: Aedes, log: Logger): void {
  const persistence = persistenceOf(broker) as RetainedSource
  const combi = persistence.createRetainedStreamCombi.bind(persistence)
  persistence.createRetainedStreamCombi = (patterns) => Readable.from(retainedOf(() => combi(patterns), patterns, log))
}
