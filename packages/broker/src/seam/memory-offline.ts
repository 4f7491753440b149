/**
 * One node (Aedes' in-memory persistence, aedes-persistence 11 `MemoryPersistence`): no topic
 * match for the offline queues while no session keeps a QoS 1/2 subscription (docs/internals.md
 * row P7; issue 15).
 *
 * For every QoS 1/2 PUBLISH Aedes runs `enqueueOffline` (aedes.js): `persistence
 * .subscriptionsByTopic(topic)` (a split of the topic and a walk of the persistence's
 * QlobberSub trie, which holds the QoS > 0 subscriptions of sessions with clean = false / v5
 * sessions that outlive their connection) and then `outgoingEnqueueCombi(subs, packet)`, each an
 * async call. With only clean sessions the trie is empty and both find nothing: the match is
 * still ~2% of a node's busy CPU under `throughput`, besides two promises per message.
 *
 * What it touches: the instance methods `addSubscriptions`, `removeSubscriptions`,
 * `cleanSubscriptions`, `subscriptionsByTopic`, `outgoingEnqueueCombi` and `countOffline` of the
 * `asyncPersistence` the CallBackPersistence Aedes holds delegates to at call time
 * (callBackPersistence.js). A subscription is added to the trie synchronously in
 * `addSubscriptions`; `countOffline()` reads the trie's `subscriptionsCount` synchronously when
 * called. So: `empty` goes false synchronously before any `addSubscriptions` runs, and true again
 * only from a `countOffline()` of 0 taken after a change settled, when no `addSubscriptions`
 * started in between (a generation counter). While `empty`, `subscriptionsByTopic` answers [] and
 * `outgoingEnqueueCombi` of no subscriptions resolves at once: what the trie would have answered.
 */
import type { Aedes } from 'aedes'
import { persistenceOf } from './aedes-broker.js'

interface MemoryCore {
  addSubscriptions(client: unknown, subs: unknown[]): Promise<void>
  removeSubscriptions(client: unknown, subs: unknown[]): Promise<void>
  cleanSubscriptions(client: unknown): Promise<void>
  subscriptionsByTopic(topic: string): Promise<unknown[]>
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): Promise<void>
  countOffline(): Promise<{ subsCount: number }>
}

const RESOLVED = Promise.resolve()

/** the aedes-persistence memory core behind the broker's persistence, or undefined (cluster mode) */
export function memoryPersistenceCore(broker: Aedes): MemoryCore | undefined {
  const core = (persistenceOf(broker) as { asyncPersistence?: { constructor?: { name?: string } } } | undefined)?.asyncPersistence
  return core?.constructor?.name === 'MemoryPersistence' ? (core as unknown as MemoryCore) : undefined
}

/** installs the fast path on a broker using Aedes' memory persistence; true when installed */
export function skipOfflineMatchWithoutSessions(broker: Aedes): boolean {
  const core = memoryPersistenceCore(broker)
  if (!core) return false
  const add = core.addSubscriptions.bind(core)
  const remove = core.removeSubscriptions.bind(core)
  const clean = core.cleanSubscriptions.bind(core)
  const byTopic = core.subscriptionsByTopic.bind(core)
  const enqueue = core.outgoingEnqueueCombi.bind(core)
  const count = core.countOffline.bind(core)
  let empty = true
  let generation = 0
  /** after a change settled: empty again if the trie counts no subscription and nothing was added since */
  const recount = (): void => {
    const seen = generation
    void count().then(
      ({ subsCount }) => {
        if (seen === generation) empty = subsCount === 0
      },
      () => {},
    )
  }
  const settle = <T>(p: Promise<T>): Promise<T> => {
    p.then(recount, recount)
    return p
  }
  core.addSubscriptions = (client, subs) => {
    generation++
    empty = false
    return settle(add(client, subs))
  }
  core.removeSubscriptions = (client, subs) => settle(remove(client, subs))
  core.cleanSubscriptions = (client) => settle(clean(client))
  core.subscriptionsByTopic = (topic) => (empty ? Promise.resolve([]) : byTopic(topic))
  core.outgoingEnqueueCombi = (subs, packet) => (subs.length === 0 ? RESOLVED : enqueue(subs, packet))
  return true
}
