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
 * 1. on this node: the subscriptions of its connected clients, asked of the trie Aedes routes
 *    messages with (seam E4 localSubscriberTest: mqemitter's matcher, whose answers per topic
 *    E3 keeps), so no second trie of the same filters is kept (issue 15: ~400 B per
 *    subscription of a topic of its own); `$share/g/f` subscriptions count through step 3;
 * 2. on the other nodes (cluster mode): their filters, as cluster/interest.ts keeps them (one
 *    trie walk); while that view is not complete (starting, Redis link down, re-loading) 0x10 is
 *    never sent;
 * 3. shared subscription groups anywhere, online members or not (shared/groups.ts);
 * 4. only when none of these matched: the persistent sessions' subscriptions, connected or not,
 *    on any node (the persistence's subscriptionsByTopic, as Aedes' own offline enqueue calls it;
 *    in memory in both modes).
 * So nothing is asked of Redis per message, and a topic with a subscriber on this node costs the
 * routing's own match (one Map lookup when the subscriptions have not changed since that topic
 * was last routed: E3) and a look at the names of its listeners. In cluster mode this node also
 * counts its filters (seam A18 observeSubscriptions, `$share/g/f` as `f`), which cluster/interest.ts
 * announces to the others; a count per filter, no trie.
 * Known approximations, all towards 0x00 except the first: a subscription made on another node
 * is seen once its announcement arrived (it leaves as the SUBACK does: Redis' round trip later,
 * well under a millisecond on a LAN, its SUBACK is not held for it, so SUBSCRIBE timing is
 * unchanged); a message published there in between may reach it though 0x10 was sent; a No Local subscription of the publisher itself, a wildcard at
 * the first level for a `$` topic on another node [MQTT-4.7.2-1], an ACL that refuses the
 * forward, a subscription of this node for a turn after its UNSUBSCRIBE (E4), and a dead node's
 * subscriptions until the view is reloaded all count as subscribers.
 */
import type { Aedes } from 'aedes'
import { localSubscriberTest, observeSubscriptions, persistenceOf } from '../seam/index.js'
import { parseShare } from '../shared/names.js'
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
  /** cluster mode: this node's filters (`f` for `$share/g/f`) and how many subscriptions hold each, for cluster/interest.ts */
  private readonly counts?: Map<string, number>
  private readonly local: (topic: string) => boolean
  private remote?: RemoteInterest
  private shareMatch?: (topic: string) => boolean

  constructor(
    private readonly broker: Aedes,
    /** cluster mode: no 0x10 until the other nodes' view is attached and complete */
    private readonly clustered: boolean,
  ) {
    this.local = localSubscriberTest(broker)
    if (!clustered) return
    const counts = (this.counts = new Map<string, number>())
    observeSubscriptions(broker, {
      added: (filter) => {
        const f = innerFilter(filter)
        if (f === undefined) return
        const n = counts.get(f) ?? 0
        counts.set(f, n + 1)
        if (n === 0) this.remote?.changed(f, true)
      },
      removed: (filter) => {
        const f = innerFilter(filter)
        const n = f === undefined ? undefined : counts.get(f)
        if (n === undefined) return
        if (n > 1) return void counts.set(f!, n - 1)
        counts.delete(f!)
        this.remote?.changed(f!, false)
      },
    })
  }

  attachRemote(remote: RemoteInterest): void {
    this.remote = remote
    remote.setLocal(() => this.counts?.keys() ?? [])
  }

  /** the shared subscription groups of the cluster (shared/index.ts) */
  attachShareGroups(match: (topic: string) => boolean): void {
    this.shareMatch = match
  }

  /**
   * cluster mode: a connected client of another node may be subscribed to `topic` (steps 2 and 3;
   * true while the other nodes' view is not complete). For `$SYS/<id>/disconnect/clients`
   * (seam/aedes-sys-clients.ts), which only subscribers hear.
   */
  heardElsewhere(topic: string): boolean {
    return !this.remote || !this.remote.complete() || this.remote.test(topic) || (this.shareMatch?.(topic) ?? false)
  }

  /** 0x00, or 0x10 when no subscription anywhere matches `topic`; a promise only when none is known in memory (step 4) */
  reasonFor(topic: string): number | Promise<number> {
    if (this.local(topic)) return 0
    if (this.clustered ? this.heardElsewhere(topic) : this.shareMatch?.(topic)) return 0
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
