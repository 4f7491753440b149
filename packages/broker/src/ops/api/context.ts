/** What the API routes work with: one node's broker, the cluster view and the security state. */
import type { Aedes } from 'aedes'
import type { Redis } from 'ioredis'
import type { CulexConfig } from '../../config/schema.js'
import type { Security } from '../../auth/setup.js'
import type { Logger } from '../../log.js'
import type { HotCounters } from '../metrics.js'
import type { NodeRpc } from './rpc.js'
import type { MemorySessions } from './memory-sessions.js'
import { persistenceOf as seamPersistenceOf } from '../../seam/index.js'

/** the persistence calls the API makes: the documented aedes-persistence interface (promise form) */
export interface Persistence {
  subscriptionsByClient(client: { id: string }): Promise<Array<{ topic: string; qos: number }>>
  cleanSubscriptions(client: { id: string }): Promise<unknown>
  createRetainedStream(pattern: string): AsyncIterable<RetainedPacket>
  storeRetained(packet: object): Promise<void>
  outgoingStream(client: { id: string }): AsyncIterable<{ messageId?: number }>
  outgoingUpdate(client: { id: string }, packet: object): Promise<void>
  outgoingClearMessageId(client: { id: string }, packet: object): Promise<unknown>
}

export interface RetainedPacket {
  topic: string
  payload: Buffer | Uint8Array | string
  qos: number
}

/** the topics of the retained messages a filter matches, in byte order (cluster/retained-index.ts; memory: broker/retain-tree.ts) */
export interface RetainedTopics {
  /** how many, and those from `offset` on */
  page(filter: string, offset: number, limit: number): Promise<{ total: number; topics: string[] }>
  /** every one */
  all(filter: string): Promise<string[]>
  /** the messages of `topics`, in one read (a topic deleted meanwhile: undefined) */
  messages(topics: string[]): Promise<Array<RetainedPacket | undefined>>
}

export interface ApiContext {
  config: CulexConfig
  nodeId: string
  broker: Aedes
  persistence: Persistence
  rpc: NodeRpc
  /** cluster mode: the node's Redis data link */
  db: Redis | undefined
  /**
   * the topics that hold a retained message, found without reading the messages (ops/api/retained.ts:
   * the cluster's index, one node's retain tree); undefined: the messages are read to find them
   * (a store that is neither)
   */
  retainedTopics: RetainedTopics | undefined
  security: Security
  counters: HotCounters
  /** memory mode: the persistent sessions this node has seen */
  sessions: MemorySessions | undefined
  log: Logger
}

/** `broker.persistence`, through the seam (seam/aedes-broker.ts persistenceOf) */
export const persistenceOf = (broker: Aedes): Persistence => seamPersistenceOf(broker) as Persistence
