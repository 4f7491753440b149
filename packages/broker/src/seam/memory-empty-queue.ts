/**
 * One node (Aedes' in-memory persistence): no `stream.pipeline` per CONNECT while no session
 * queue ever held a message (docs/internals.md row P9; issue 15, connects/s).
 *
 * Aedes 2.0.0-beta.1 lib/handlers/connect.js `emptyQueue`, the last step of every CONNECT, does
 * `const outgoing = persistence.outgoingStream(client); client.resume(); pipeline(outgoing,
 * through(clearQueue), done)`, whether the session's queue holds anything or not. `pipeline` is
 * node:stream's, imported by name (an ES module's live binding of the builtin). On the memory store
 * `outgoingStream` is a `Readable.from` of a copy of the queue (mapped by seam/persistence.ts
 * `mapSessionReplay`): with the pipeline's AbortController, its abort (a DOMException) on finish and
 * the three streams, ~25 µs of CPU per CONNECT (warm, measured alone) to replay nothing.
 *
 * What it touches:
 * - the memory core's (row P7) instance methods `outgoingEnqueue` (lib/client.js `publish`, a
 *   message for a session that outlives its connection) and `outgoingEnqueueCombi` (aedes.js
 *   `enqueueOffline`), the only two that add to a session queue, wrapped: the first call that
 *   enqueues anything turns the shortcut off for good (`queued`);
 * - `persistence.outgoingStream`, wrapped outermost (install after `mapSessionReplay` and
 *   `replayQueueOfResumedV5Sessions`): while nothing was ever queued it answers EMPTY_QUEUE, an
 *   empty (async) iterable, instead of asking the store (every queue is empty then);
 * - node:stream's `pipeline`, replaced once per process (and `module.syncBuiltinESMExports()` so
 *   that Aedes' imported binding sees it): given EMPTY_QUEUE as its first stream it calls back on
 *   the next tick, as the pipeline of an empty queue did (its `clearQueue` never ran), without
 *   building one; any other call goes to Node's own pipeline unchanged. Without the replacement
 *   (or on a Node whose builtin bindings do not follow), Node's pipeline reads EMPTY_QUEUE as the
 *   empty iterable it is: the same outcome at the old cost.
 * Anyone else reading the queue through `outgoingStream` (ops/api/sessions.ts) iterates nothing.
 * Row P11, the same condition: the memory core's `outgoingClearMessageId` (wrapped outermost, after
 * P10's) answers a shared resolved `undefined` while nothing was ever queued (below).
 * No upstream issue yet (emptyQueue could skip the pipeline when the store says the queue is empty).
 */
import type { Aedes } from 'aedes'
import { persistenceOf } from './aedes-broker.js'
import { memoryPersistenceCore } from './memory-offline.js'
import { replaceStreamExport } from './stream-export.js'

/** what outgoingStream answers while no queue ever held a message: an empty (async) iterable */
export const EMPTY_QUEUE: AsyncIterable<never> & Iterable<never> = Object.freeze({
  *[Symbol.iterator](): Iterator<never> {},
  async *[Symbol.asyncIterator](): AsyncIterator<never> {},
})

/** CONNECTs whose replay was the shortcut, per process (test/seam/contract-empty-queue.test.ts) */
export const emptyReplays = { count: 0 }

let shortcutInstalled = false

/** node:stream's pipeline, once per process: EMPTY_QUEUE as the source calls back on the next tick */
function installPipelineShortcut(): void {
  if (shortcutInstalled) return
  shortcutInstalled = true
  replaceStreamExport('pipeline', (original) => function pipeline(this: unknown, ...args: unknown[]): unknown {
    if (args[0] !== EMPTY_QUEUE) return original.apply(this, args)
    emptyReplays.count++
    const done = args[args.length - 1]
    if (typeof done === 'function') process.nextTick(done as () => void)
    // what Node's returns: the last stream
    return args[args.length - 2]
  })
}

interface QueueCore {
  outgoingEnqueue(sub: unknown, packet: unknown): Promise<void>
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): PromiseLike<void>
  outgoingClearMessageId(client: unknown, packet: unknown): Promise<unknown>
}

/** what the memory store's outgoingClearMessageId answers for an id its (empty) queue does not hold */
const NOTHING_CLEARED: Promise<undefined> = Promise.resolve(undefined)

/**
 * A cluster node (row P13): the replay of every clean session's CONNECT is the shortcut. Such a
 * session starts with no queue [MQTT-3.1.2-6] (cluster/session-queue.ts answers none), but the
 * callback layer Aedes reads the store through (aedes-persistence callBackPersistence.js) makes a
 * `Readable.from` of it, so Aedes built a pipeline (its AbortController, its abort's DOMException) to
 * replay nothing: ~5% of a node's busy time under a connect ramp. Install BEFORE create.ts' A20
 * (replayQueueOfResumedV5Sessions), which must see the client first: it marks a resumed MQTT 5
 * session with Session Expiry 0 as not clean for its replay. Anything but a Client with
 * `clean === true` (the admin API's `{ id }`) asks the store as before.
 */
export function skipCleanSessionReplays(broker: Aedes): void {
  installPipelineShortcut()
  const persistence = persistenceOf(broker) as { outgoingStream(client: unknown): unknown }
  const outgoingStream = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client: unknown) => ((client as { clean?: unknown }).clean === true ? EMPTY_QUEUE : outgoingStream(client))
}

/** installs the shortcut on a broker using Aedes' memory persistence (call last of the outgoingStream wrappers); true when installed */
export function skipEmptyQueueReplays(broker: Aedes): boolean {
  const core = memoryPersistenceCore(broker) as unknown as QueueCore | undefined
  if (!core) return false
  let queued = false
  const enqueue = core.outgoingEnqueue.bind(core)
  const combi = core.outgoingEnqueueCombi.bind(core)
  core.outgoingEnqueue = (sub, packet) => {
    queued = true
    return enqueue(sub, packet)
  }
  core.outgoingEnqueueCombi = (subs, packet) => {
    if (subs.length > 0) queued = true
    return combi(subs, packet)
  }
  // row P11: every subscriber PUBACK (lib/handlers/puback.js) asks the store to clear its id; while
  // nothing was ever queued there is nothing to clear (the store answers undefined), so the answer
  // is one shared resolved promise instead of an async call, its promise and an empty queue array
  // made for the client id (asyncPersistence.js getMapRef). Still a promise: Aedes' `.then` calls
  // back in a microtask as before (a callback within the parse would re-enter the parser through
  // nextBatch's read).
  const clear = core.outgoingClearMessageId.bind(core)
  core.outgoingClearMessageId = (client, packet) => (queued ? clear(client, packet) : NOTHING_CLEARED)
  const persistence = persistenceOf(broker) as { outgoingStream(client: unknown): unknown }
  const outgoingStream = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client: unknown) => (queued ? outgoingStream(client) : EMPTY_QUEUE)
  installPipelineShortcut()
  return true
}
