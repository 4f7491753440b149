/**
 * E4: whether a client connected to this node holds a subscription that matches a topic name,
 * answered from the trie Aedes routes messages with, so no second trie of the same filters is
 * kept (issue 15: ~400 B per subscription of a topic of its own; broker/no-subscribers.ts asks,
 * for the MQTT 5 PUBACK 0x10 No matching subscribers).
 *
 * What it reads: mqemitter 7's `broker.mq._matcher.match(topic)` (a Qlobber; in a cluster the
 * bus' local emitter, cluster/bus.ts, whose matcher is the same kind), answered from E3's
 * per-topic cache where cacheTopicMatches installed it (aedes-broker.ts). Aedes 2.0.0-beta.1
 * adds a client's subscription there as the listener lib/handlers/subscribe.js addSubs makes:
 * `handlePacketSubscription`, wrapped in `deliverSharp` for a filter that starts with a wildcard
 * (which passes no `$` topic on [MQTT-4.7.2-1]). Aedes' own listeners (`$SYS/+/heartbeat`,
 * `birth`, `new/clients`) and ours (the shared subscriptions' `#`, seam onEveryMessage) have
 * other names and are not a client's subscription. A subscription is in the trie from
 * broker.subscribe (mqemitter's `on` adds it synchronously) until a turn after broker.unsubscribe
 * (mqemitter removes it in a setImmediate): a leaving one may still count, never a missing one.
 * test/seam/contract-subscribers.test.ts checks the names and both directions; no upstream issue
 * (mqemitter has no public "has a listener for" call).
 */
import type { Aedes } from 'aedes'

type Listener = (...args: unknown[]) => unknown
interface MatcherInternals {
  match(topic: string): readonly Listener[]
}

/** Aedes' listener for a client's subscription (lib/handlers/subscribe.js addSubs) */
const SUBSCRIPTION = 'handlePacketSubscription'
/** the same, for a filter that starts with `+` or `#`: drops `$` topics */
const WILDCARD_FIRST = 'deliverSharp'

function matcherOf(broker: Aedes): MatcherInternals {
  const m = (broker as unknown as { mq?: { _matcher?: MatcherInternals } }).mq?._matcher
  if (!m || typeof m.match !== 'function') throw new Error('seam E4: broker.mq._matcher.match is missing (mqemitter changed?)')
  return m
}

/** a function answering, for `broker`, whether a client of this node holds a subscription matching the topic name */
export function localSubscriberTest(broker: Aedes): (topic: string) => boolean {
  const matcher = matcherOf(broker)
  return (topic) => {
    const listeners = matcher.match(topic)
    for (let i = 0; i < listeners.length; i++) {
      const name = listeners[i]!.name
      if (name === SUBSCRIPTION) return true
      if (name === WILDCARD_FIRST && topic.charCodeAt(0) !== 36) return true
    }
    return false
  }
}
