/**
 * The outgoing side of persistent sessions in Redis: each session's queue of QoS 1/2 messages,
 * their packet identifiers, and the replay on reconnect. Replaces aedes-persistence-redis'
 * outgoing* functions, which in a cluster:
 * - replay at most 1,001 messages per reconnect (`maxSessionDelivery`), the rest only at a
 *   later reconnect, after newer messages;
 * - keep "which packet id stands for which message" in a per-node LRU cache: a PUBACK that is
 *   handled by a node without that entry (another node, a restarted one, an evicted entry) or
 *   cut off half-way (four round trips, interrupted by a node stop) leaves the acknowledged
 *   message queued, to come back on every later reconnect;
 * - write the packet id into the message body shared by every session it is queued for, so a
 *   redelivery may carry another session's packet id [MQTT-4.4.0-1] and two messages in flight
 *   to one client can share an id [MQTT-2.3.1-2];
 * - decrement the shared message's reference count on every acknowledgement, a repeated one
 *   included, which can delete a message other sessions have not received yet.
 *
 * Here every step is one Lua function, atomic in Redis (outgoing-lua.ts; a loop turn's steps in
 * one script call, script-batch.ts), and the packet ids live in Redis, per
 * session: `culex:oids:<client>` maps `m<id>` -> queue entry and `k<entry>` -> id. Queue entries
 * keep the upstream layout: `outgoing:<client>` lists `packet:<node>:<counter>` (the shared body,
 * with its `:offlineCount`) or, once the client sent PUBREC, `outgoing:<client>:<node>:<counter>`
 * (a PUBREL to resend). A PUBREC/PUBACK/PUBCOMP only counts if the entry was still queued.
 *
 * The replay streams the queue in pages. Its position lives in Redis (`culex:replay:<client>`,
 * with a token so a newer replay of the same client stops an older one) and the
 * acknowledgements of replayed messages move it back, so entries removed ahead of it are never
 * skipped; it stops at the queue's length when it started: later entries are live messages,
 * which session-order.ts holds until the replay is done. Entries never sent get their packet id
 * here, unused by the session's in-flight messages; entries sent before come with theirs and
 * DUP=1 [MQTT-3.3.1-1] [MQTT-4.4.0-1].
 */
import type { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { outgoingKey } from './keys.js'
import { DROP_LUA, REPLAY_PAGE_LUA, REPLAY_START_LUA, STEP, STEPS_LUA } from './outgoing-lua.js'
import { ScriptBatch } from './script-batch.js'

/** per-session packet ids: `m<id>` -> queue entry, `k<entry>` -> id, `q<entry>` -> granted QoS if lower, `g` -> connection generation */
export const outgoingIdsKey = (clientId: string): string => `culex:oids:${encodeURIComponent(clientId)}`
/** position of the replay running for a session */
export const replayKey = (clientId: string): string => `culex:replay:${encodeURIComponent(clientId)}`

/** messages read from Redis per page of a replay */
export const REPLAY_PAGE = 500
/** and at most about this many payload bytes */
export const REPLAY_PAGE_BYTES = 1 << 20

export interface ReplayEntry {
  key: string
  /** msgpack body of a PUBLISH; empty for a PUBREL */
  body: Buffer
  messageId: number
  /** sent before (a redelivery) */
  sent: boolean
  /** granted QoS when lower than the published one */
  qos?: number
}

type Scripts = Redis & {
  culexOutDrop(list: string, ids: string, replay: string): Promise<number>
  culexReplayStart(list: string, ids: string, replay: string, token: string): Promise<[number, number]>
  culexReplayPageBuffer(list: string, ids: string, replay: string, token: string, page: number, nextId: number, bytes: number): Promise<Array<number | Buffer>>
}

export class OutgoingStore {
  private readonly db: Scripts
  /** the per-delivery steps (queued, sent, PUBREC, acknowledged) of a loop turn, in one script call */
  private readonly steps: ScriptBatch

  constructor(db: Redis) {
    // ioredis sends each script once (EVALSHA after that, EVAL again if Redis lost its script cache)
    this.steps = new ScriptBatch(db, 'culexOutSteps', STEPS_LUA)
    db.defineCommand('culexOutDrop', { numberOfKeys: 3, lua: DROP_LUA })
    db.defineCommand('culexReplayStart', { numberOfKeys: 3, lua: REPLAY_START_LUA })
    db.defineCommand('culexReplayPage', { numberOfKeys: 3, lua: REPLAY_PAGE_LUA })
    this.db = db as Scripts
  }

  /**
   * Queue one message for sessions: its body once, with a reference per session, and an entry
   * at the tail of each session's queue, in one step (atomic). A session whose subscription
   * grants a lower QoS than published gets it at that QoS on replay [MQTT-3.8.4-6].
   */
  async enqueue(subs: ReadonlyArray<{ clientId: string; qos: number }>, key: string, qos: number, body: Buffer): Promise<void> {
    const keys: string[] = [key, `${key}:offlineCount`]
    const args: Array<string | Buffer | number> = [body, subs.length]
    for (const sub of subs) {
      keys.push(outgoingKey(sub.clientId))
      if (sub.qos < qos) {
        keys.push(outgoingIdsKey(sub.clientId))
        args.push(sub.qos)
      } else args.push('')
    }
    await this.steps.run(STEP.enqueue, keys, args)
  }

  /** a PUBLISH of `entry` goes out to the client with `messageId`: returns the id to use (a free one if that is taken) */
  sent(clientId: string, entry: string, messageId: number, gen: number): Promise<number> {
    return this.steps.run(STEP.sent, [outgoingKey(clientId), outgoingIdsKey(clientId)], [entry, messageId, gen]) as Promise<number>
  }

  /** the client sent PUBREC: the queue entry becomes its PUBREL */
  pubrec(clientId: string, messageId: number): Promise<number> {
    return this.steps.run(STEP.pubrec, [outgoingKey(clientId), outgoingIdsKey(clientId)], [messageId]) as Promise<number>
  }

  /**
   * PUBACK or PUBCOMP: returns the body of the acknowledged PUBLISH if `withBody` (Aedes' 'ack'
   * event; empty for a PUBREL or when not asked), null if none was in flight
   */
  async acked(clientId: string, messageId: number, withBody: boolean): Promise<Buffer | null> {
    const body = (await this.steps.run(STEP.acked, [outgoingKey(clientId), outgoingIdsKey(clientId), replayKey(clientId)], [messageId, withBody ? '1' : '0'])) as Buffer | null
    return body ?? null
  }

  /**
   * The session's queue, page by page, from its head to where it ended when the replay
   * started. `nextId` is the first packet id to try for entries never sent; `onNextId`
   * hears the next free one after each page.
   */
  async *replay(clientId: string, nextId: number, onNextId: (id: number) => void, onGeneration: (gen: number) => void): AsyncGenerator<ReplayEntry> {
    const keys = [outgoingKey(clientId), outgoingIdsKey(clientId), replayKey(clientId)] as const
    const token = randomBytes(8).toString('hex')
    // after the steps taken so far (an acknowledgement of the connection before, a message queued)
    this.steps.flush()
    const [gen, entries] = await this.db.culexReplayStart(...keys, token)
    onGeneration(gen)
    if (entries === 0) return
    for (;;) {
      this.steps.flush()
      const page = await this.db.culexReplayPageBuffer(...keys, token, REPLAY_PAGE, nextId, REPLAY_PAGE_BYTES)
      if (page[0] === -1) return
      nextId = page[0] as number
      onNextId(nextId)
      if (page.length === 1) return
      for (let i = 1; i < page.length; i += 5) {
        const q = (page[i + 4] as Buffer).toString()
        yield {
          key: (page[i] as Buffer).toString(),
          body: page[i + 1] as Buffer,
          messageId: page[i + 2] as number,
          sent: page[i + 3] === 1,
          qos: q === '' ? undefined : Number(q),
        }
      }
    }
  }

  /** the session ended: its queue goes, with its packet ids and its references to message bodies */
  drop(clientId: string): Promise<number> {
    this.steps.flush()
    return this.db.culexOutDrop(outgoingKey(clientId), outgoingIdsKey(clientId), replayKey(clientId))
  }
}
