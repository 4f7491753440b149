/**
 * The session-queue methods of aedes-persistence 11's memory store (seam row P7's core), as the
 * memory-store contract tests (P8, P10) drive and read them.
 */
import type { Aedes } from 'aedes'
import * as seam from '../../src/seam/index.js'

/** a stored entry of a session queue */
export interface Queued {
  cmd: string
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  payload?: unknown
}

export interface QueueCore {
  outgoingEnqueueCombi(subs: Array<{ clientId: string; qos: number }>, packet: object): Promise<void>
  outgoingUpdate(client: { id: string }, packet: object): Promise<void>
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>
  outgoingStream(client: { id: string }): AsyncIterable<Queued>
}

export const coreOf = (broker: Aedes): QueueCore => seam.memoryPersistenceCore(broker) as unknown as QueueCore
