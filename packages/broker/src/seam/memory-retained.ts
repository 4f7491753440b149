/**
 * P14 how many retained messages a single node holds, without reading them: aedes-persistence's
 * memory store keeps them in a private Map (`#retained`), which only `createRetainedStream`
 * reads, one message at a time. Counting through it (ops/metrics.ts' `culex_retained_messages`
 * did, at every scrape) held the event loop ~200 ms per 100,000 retained messages and made ~20 MB
 * of garbage each time. Here the memory core's `storeRetained` (an instance method the
 * CallBackPersistence Aedes holds calls at call time; an empty payload deletes the topic's
 * message, any other replaces it) is wrapped to keep the set of topics that hold one; the set
 * shares the topic strings the store's Map holds. docs/internals.md row P14;
 * test/seam/contract-memory-offline.test.ts.
 */
import type { Aedes } from 'aedes'
import { memoryPersistenceCore } from './memory-offline.js'

interface RetainedStore {
  storeRetained(packet: { topic: string; payload: { length: number } }): Promise<void>
}

/** a function that tells the number of retained messages of the broker's memory store (undefined: not the memory store) */
export function countRetainedTopics(broker: Aedes): (() => number) | undefined {
  const core = memoryPersistenceCore(broker) as unknown as RetainedStore | undefined
  if (!core) return undefined
  const topics = new Set<string>()
  const store = core.storeRetained.bind(core)
  core.storeRetained = (packet) => {
    const { topic } = packet
    const clear = packet.payload.length === 0
    return store(packet).then(() => void (clear ? topics.delete(topic) : topics.add(topic)))
  }
  return () => topics.size
}
