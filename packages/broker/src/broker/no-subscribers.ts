/**
 * PUBACK / PUBREC 0x10 No matching subscribers (MQTT 5.0 §3.4.2.1: "the message is accepted but
 * there are no subscribers ... If the Server knows that there are no matching subscribers, it MAY
 * use this Reason Code instead of 0x00"). A success code: the message is published, stored and
 * retained exactly as with 0x00; the code is chosen when the publish has completed (the
 * `published` hook, broker/create.ts), so the QoS 1 guarantee (PUBACK once safe) is unchanged.
 * Mosquitto 2 and EMQX answer it too, also for a retained message nobody is subscribed to
 * (checked with Mosquitto 2.0.11), and so does Culex.
 *
 * A subscription "matches" when its filter matches the topic name, wherever it is:
 * 1. on this node: the filters Aedes holds for its connected clients (seam A18
 *    observeSubscriptions), `$share/g/f` as `f`; one trie walk (filter-set.ts);
 * 2. on the other nodes (cluster mode): their filters, as cluster/interest.ts keeps them (one
 *    trie walk); while that view is not complete (starting, Redis link down, re-loading) 0x10 is
 *    never sent;
 * 3. shared subscription groups anywhere, online members or not (shared/groups.ts);
 * 4. only when none of these matched: the persistent sessions' subscriptions, connected or not,
 *    on any node (the persistence's subscriptionsByTopic, as Aedes' own offline enqueue calls it;
 *    in memory in both modes).
 * So nothing is asked of Redis per message, and a topic with a subscriber costs one trie walk, or
 * one Map lookup when the set of filters has not changed since that topic was last asked about
 * (filter-set.ts remembers the answers).
 * Known approximations, all towards 0x00 except the first: a subscription made on another node
 * is seen once its announcement arrived (it leaves as the SUBACK does: Redis' round trip later,
 * well under a millisecond on a LAN, its SUBACK is not held for it, so SUBSCRIBE timing is
 * unchanged); a message published there in between may reach it though 0x10 was sent; a No Local subscription of the publisher itself, a wildcard at
 * the first level for a `$` topic [MQTT-4.7.2-1], an ACL that refuses the forward, and a dead
 * node's subscriptions until the view is reloaded all count as subscribers.
 */
import type { Aedes } from 'aedes'
import { observeSubscriptions, persistenceOf } from '../seam/index.js'
import { parseShare } from '../shared/names.js'
import { FilterSet } from './filter-set.js'
import { NO_MATCHING_SUBSCRIBERS } from './mqtt5-puback.js'

/** the other nodes' filters (cluster/interest.ts) */
export interface RemoteInterest {
  /** the view of every other node's filters is complete */
  complete(): boolean
  /** some other node holds a subscription whose filter matches `topic` */
  test(topic: string): boolean
  /** this node's set of filters gained or lost `filter` */
  changed(filter: string, added: boolean): void
  /** this node's filters now (sent when the view is announced afresh) */
  setLocal(filters: () => Iterable<string>): void
}

interface Persistence {
  subscriptionsByTopic(topic: string): Promise<unknown[]>
}

export class SubscriberIndex {
  private readonly local = new FilterSet()
  private remote?: RemoteInterest
  private shareMatch?: (topic: string) => boolean

  constructor(
    private readonly broker: Aedes,
    /** cluster mode: no 0x10 until the other nodes' view is attached and complete */
    private readonly clustered: boolean,
  ) {
    observeSubscriptions(broker, {
      added: (filter) => {
        const f = innerFilter(filter)
        if (f !== undefined && this.local.add(f)) this.remote?.changed(f, true)
      },
      removed: (filter) => {
        const f = innerFilter(filter)
        if (f !== undefined && this.local.remove(f)) this.remote?.changed(f, false)
      },
    })
  }

  attachRemote(remote: RemoteInterest): void {
    this.remote = remote
    remote.setLocal(() => this.local.filters())
  }

  /** the shared subscription groups of the cluster (shared/index.ts) */
  attachShareGroups(match: (topic: string) => boolean): void {
    this.shareMatch = match
  }

  /** 0x00, or 0x10 when no subscription anywhere matches `topic`; a promise only when none is known in memory (step 4) */
  reasonFor(topic: string): number | Promise<number> {
    if (this.local.test(topic)) return 0
    if (this.clustered && (!this.remote || !this.remote.complete() || this.remote.test(topic))) return 0
    if (this.shareMatch?.(topic)) return 0
    const persistence = persistenceOf(this.broker) as Persistence
    return persistence.subscriptionsByTopic(topic).then(
      (subs) => (subs.length === 0 ? NO_MATCHING_SUBSCRIBERS : 0),
      () => 0,
    )
  }
}

/** the filter a subscription matches topics with: `f` for `$share/g/f`; undefined for an invalid share name (never granted) */
function innerFilter(filter: string): string | undefined {
  const s = parseShare(filter)
  if (s === undefined) return filter
  return typeof s === 'object' ? s.filter : undefined
}
