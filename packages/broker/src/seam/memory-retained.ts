/**
 * One node's retained messages (aedes-persistence 11's memory store, `MemoryPersistence`).
 *
 * P17: the store kept them in a private Map (`#retained`) and answered every filter, a topic
 * without wildcards included, by testing each stored topic against it (asyncPersistence.js
 * `retainedMessagesByPattern`, a QlobberTrue per call): with 100,000 retained messages every
 * SUBSCRIBE cost the node 31-61 ms and ~42 ms of CPU, so ~25 SUBSCRIBEs a second held it. Here the
 * memory core's three instance methods that touch that Map (`storeRetained`, `createRetainedStream`,
 * `createRetainedStreamCombi`; the CallBackPersistence Aedes holds calls them at call time) are
 * replaced by a tree of topic levels (broker/retain-tree.ts): a SUBSCRIBE reads the branches its
 * filter names. Same shapes as the store's: a stored packet is a copy of the one given (an empty
 * payload deletes the topic's), the streams are `Readable.from` of the packets, one iterable per
 * pattern for the combined stream. The store's own Map stays empty. Matching is the spec's (`+`
 * matches an empty level [MQTT-4.7.1-3], which qlobber's defaults did not; no `$` topic for a
 * filter that starts with a wildcard [MQTT-4.7.2-1]).
 *
 * P14: how many there are, without reading them (ops/metrics.ts' `culex_retained_messages`): the
 * tree's size.
 *
 * docs/internals.md rows P14, P17; test/seam/contract-memory-offline.test.ts.
 */
import { Readable } from 'node:stream'
import type { Aedes } from 'aedes'
import { RetainTree } from '../broker/retain-tree.js'
import { memoryPersistenceCore } from './memory-offline.js'

interface RetainedPacket {
  topic: string
  payload: { length: number }
}

interface RetainedCore {
  storeRetained(packet: RetainedPacket): Promise<void>
  createRetainedStream(pattern: string): Readable
  createRetainedStreamCombi(patterns: string[]): Readable
}

const trees = new WeakMap<object, RetainTree<RetainedPacket>>()

function* eachPattern(tree: RetainTree<RetainedPacket>, patterns: string[]): Generator<RetainedPacket> {
  for (const p of patterns) yield* tree.match(p)
}

/** the tree that holds the broker's retained messages in place of the memory store's Map (undefined: not the memory store) */
export function memoryRetainedTree(broker: Aedes): RetainTree<RetainedPacket> | undefined {
  const core = memoryPersistenceCore(broker) as unknown as RetainedCore | undefined
  if (!core) return undefined
  let tree = trees.get(core)
  if (tree) return tree
  const t = new RetainTree<RetainedPacket>()
  core.storeRetained = async (pkt) => {
    const packet = Object.assign({}, pkt)
    if (packet.payload.length === 0) t.delete(packet.topic)
    else t.set(packet.topic, packet)
  }
  core.createRetainedStream = (pattern) => Readable.from(t.match(pattern))
  core.createRetainedStreamCombi = (patterns) => Readable.from(eachPattern(t, patterns))
  trees.set(core, (tree = t))
  return tree
}

/** a function that tells the number of retained messages of the broker's memory store (undefined: not the memory store) */
export function countRetainedTopics(broker: Aedes): (() => number) | undefined {
  const tree = memoryRetainedTree(broker)
  return tree && (() => tree.size)
}
