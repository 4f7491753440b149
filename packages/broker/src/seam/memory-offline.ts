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
 *
 * Both answers are `Answered`: a thenable whose `then` calls back at once, in the caller's turn,
 * instead of a promise (Aedes only calls `.then(ok, fail)` on them). enqueueOffline's two
 * `.then`s then make no promise and no microtask: with real promises each QoS 1/2 message made
 * four (the answer, Aedes' two `.then`s, the stored RESOLVED's `.then`) and reached the emitter
 * two microtasks after `broker.publish` (issue 15: broker CPU per delivery, docs/performance.md).
 * What runs in those callbacks (the rest of Aedes' publish series: the emitter, the `published`
 * hook) now runs within `broker.publish`, as a QoS 0 message's series already did.
 */
import type { Aedes } from 'aedes'
import { persistenceOf } from './aedes-broker.js'

interface MemoryCore {
  addSubscriptions(client: unknown, subs: unknown[]): Promise<void>
  removeSubscriptions(client: unknown, subs: unknown[]): Promise<void>
  cleanSubscriptions(client: unknown): Promise<void>
  subscriptionsByTopic(topic: string): PromiseLike<unknown[]>
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): PromiseLike<void>
  countOffline(): Promise<{ subsCount: number }>
}

/**
 * A value already there, as a thenable that hands it on synchronously: `then(ok)` calls `ok` at
 * once and answers its result (an `Answered` again unless it is a thenable itself). `await` and
 * `Promise.resolve` take it like a resolved promise; it never rejects.
 */
export class Answered<T> implements PromiseLike<T> {
  constructor(readonly value: T) {}
  then<R1 = T, R2 = never>(ok?: ((value: T) => R1 | PromiseLike<R1>) | null, _fail?: ((reason: unknown) => R2 | PromiseLike<R2>) | null): PromiseLike<R1 | R2> {
    if (typeof ok !== 'function') return this as unknown as PromiseLike<R1>
    const out = ok(this.value)
    if (out !== null && (typeof out === 'object' || typeof out === 'function') && typeof (out as { then?: unknown }).then === 'function') return out as PromiseLike<R1>
    return out === undefined ? (DONE as unknown as PromiseLike<R1>) : new Answered(out as R1)
  }
  catch(): this {
    return this
  }
  finally(fn?: (() => void) | null): this {
    if (typeof fn === 'function') fn()
    return this
  }
}
/** `undefined`, answered (outgoingEnqueueCombi of no subscriptions) */
const DONE = new Answered<undefined>(undefined)
/** no subscriptions, answered (never changed: Aedes only filters it into a new array for a $SYS topic) */
const NO_SUBS = new Answered<unknown[]>(Object.freeze([]) as unknown as unknown[])

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
  core.subscriptionsByTopic = (topic) => (empty ? NO_SUBS : byTopic(topic))
  core.outgoingEnqueueCombi = (subs, packet) => (subs.length === 0 ? (DONE as PromiseLike<void>) : enqueue(subs, packet))
  return true
}
