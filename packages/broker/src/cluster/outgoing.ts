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
 * Here every step is one Lua script, atomic in Redis, and the packet ids live in Redis, per
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
import { deferredWrite } from '../seam/index.js'

/** per-session packet ids: `m<id>` -> queue entry, `k<entry>` -> id, `q<entry>` -> granted QoS if lower, `g` -> connection generation */
export const outgoingIdsKey = (clientId: string): string => `culex:oids:${encodeURIComponent(clientId)}`
/** position of the replay running for a session */
export const replayKey = (clientId: string): string => `culex:replay:${encodeURIComponent(clientId)}`

/** messages read from Redis per page of a replay */
export const REPLAY_PAGE = 500
/** and at most about this many payload bytes */
export const REPLAY_PAGE_BYTES = 1 << 20
/** a replay's position outlives a node that died during it by this much at most (renewed each page) */
const REPLAY_TTL_S = 3600

// shared by the scripts (scripts build `packet:*` and PUBREL keys from list entries: one Redis, not Redis Cluster)
// free_id: `m` or the next id after it not in use by the session (1..65535)
const HELPERS = `
local function free_id(ids, m)
  for _ = 1, 65535 do
    if redis.call('HEXISTS', ids, 'm' .. m) == 0 then return m end
    m = m % 65535 + 1
  end
  return m
end
-- the session is done with a queued message body: one reference less
local function unref(key)
  local left = redis.call('DECR', key .. ':offlineCount')
  if left <= 0 then redis.call('DEL', key, key .. ':offlineCount') end
end
`

// KEYS: the body's key, its reference count's, then per session its list (and its ids hash when
// its subscription grants a lower QoS). ARGV: body, number of sessions, then per session that
// lower QoS or ''. A message queued for sessions: its body once, a reference per session, an
// entry at the tail of each session's queue (what a MULTI of SET, SET, RPUSH... did, in one
// command: one reply to parse instead of one per command and the transaction's two).
const ENQUEUE_LUA = `
redis.call('MSET', KEYS[1], ARGV[1], KEYS[2], ARGV[2])
local k = 3
for i = 3, #ARGV do
  redis.call('RPUSH', KEYS[k], KEYS[1])
  k = k + 1
  if ARGV[i] ~= '' then
    redis.call('HSET', KEYS[k], 'q' .. KEYS[1], ARGV[i])
    k = k + 1
  end
end
return 1
`

// KEYS: list, ids. ARGV: entry key, packet id wanted, connection generation (0: unknown).
// A PUBLISH goes out: record its id. Returns the id to use: the one wanted unless another
// in-flight message of the session has it. A connection the session has left (a newer one
// started its replay: higher generation `g`) records nothing: its late deliveries (a node
// closing it, a takeover) must not replace the ids the newer connection sent and is acking.
// (The generation, the wanted id's entry and this entry's id in one HMGET: on every delivery to
// a persistent session, Redis' cost is the scripts' calls.)
const SENT_LUA = `${HELPERS}
local key, want, gen = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = redis.call('HMGET', KEYS[2], 'g', 'm' .. want, 'k' .. key)
if gen > 0 and gen < tonumber(cur[1] or '0') then return want end
if cur[2] == key then return want end
local m = want
if cur[2] then m = free_id(KEYS[2], want % 65535 + 1) end
local old = cur[3]
if old then redis.call('HDEL', KEYS[2], 'm' .. old) end
redis.call('HSET', KEYS[2], 'm' .. m, key, 'k' .. key, m)
return m
`

// KEYS: list, ids. ARGV: packet id. PUBREC received: the entry becomes a PUBREL, in place.
const PUBREC_LUA = `${HELPERS}
local m = ARGV[1]
local key = redis.call('HGET', KEYS[2], 'm' .. m)
if not key or string.sub(key, 1, 7) ~= 'packet:' then return 0 end
local pos = redis.call('LPOS', KEYS[1], key)
if not pos then return 0 end
local rel = KEYS[1] .. ':' .. string.sub(key, 8)
redis.call('LSET', KEYS[1], pos, rel)
redis.call('SET', rel, m)
unref(key)
redis.call('HDEL', KEYS[2], 'k' .. key, 'q' .. key)
redis.call('HSET', KEYS[2], 'm' .. m, rel, 'k' .. rel, m)
return 1
`

// KEYS: list, ids, replay. ARGV: packet id, '1' to return the body. PUBACK/PUBCOMP received: the
// entry leaves the queue. Returns the acknowledged message's body when asked ('' for a PUBREL or
// when not asked, false when nothing was in flight): only Aedes' 'ack' event carries it, and a
// node with no listener for it does not have it read, sent and decoded on every acknowledgement.
// While a replay runs, its position moves back when the entry was before it; without one, no
// LPOS (LREM removes the same first occurrence).
const ACKED_LUA = `${HELPERS}
local m = ARGV[1]
local key = redis.call('HGET', KEYS[2], 'm' .. m)
if not key then return false end
redis.call('HDEL', KEYS[2], 'm' .. m, 'k' .. key, 'q' .. key)
local r = redis.call('HMGET', KEYS[3], 'cursor', 'end')
if r[1] or r[2] then
  local pos = redis.call('LPOS', KEYS[1], key)
  if not pos then return '' end
  redis.call('LREM', KEYS[1], 1, key)
  if r[1] and pos < tonumber(r[1]) then redis.call('HINCRBY', KEYS[3], 'cursor', -1) end
  if r[2] and pos < tonumber(r[2]) then redis.call('HINCRBY', KEYS[3], 'end', -1) end
elseif redis.call('LREM', KEYS[1], 1, key) == 0 then
  return ''
end
if string.sub(key, 1, 7) == 'packet:' then
  local body = ''
  if ARGV[2] == '1' then body = redis.call('GET', key) or '' end
  unref(key)
  return body
end
redis.call('DEL', key)
return ''
`

// KEYS: list, ids, replay. ARGV: token. A connection of the session starts: its generation
// (field g of the ids hash) is one above the last; its replay starts where the queue starts and
// ends where it ends now. Returns {generation, number of entries (0: nothing to replay)}.
const REPLAY_START_LUA = `
local g = redis.call('HINCRBY', KEYS[2], 'g', 1)
local n = redis.call('LLEN', KEYS[1])
if n == 0 then return {g, 0} end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], 'token', ARGV[1], 'cursor', 0, 'end', n)
redis.call('EXPIRE', KEYS[3], ${REPLAY_TTL_S})
return {g, n}
`

// KEYS: list, ids, replay. ARGV: token, page size, next free packet id, page bytes (a page ends
// after the message that reaches them).
// Returns {next id, then per entry: key, body ('' for a PUBREL), id, sent before (1/0), granted QoS ('' = as published)}
// or {-1} when another replay of the session took over, {next id} alone when done.
const REPLAY_PAGE_LUA = `${HELPERS}
local list, ids, replay = KEYS[1], KEYS[2], KEYS[3]
local r = redis.call('HMGET', replay, 'token', 'cursor', 'end')
if r[1] ~= ARGV[1] then return {-1} end
local cursor, last = tonumber(r[2]), tonumber(r[3])
local nextId = tonumber(ARGV[3])
local out = {nextId}
local n = math.min(tonumber(ARGV[2]), last - cursor)
if n <= 0 then
  redis.call('DEL', replay)
  return out
end
redis.call('EXPIRE', replay, ${REPLAY_TTL_S})
local kept, bytes, maxBytes = 0, 0, tonumber(ARGV[4])
for _, key in ipairs(redis.call('LRANGE', list, cursor, cursor + n - 1)) do
  if bytes >= maxBytes then break end
  local m = redis.call('HGET', ids, 'k' .. key)
  local isPublish = string.sub(key, 1, 7) == 'packet:'
  local body = ''
  if isPublish then body = redis.call('GET', key) end
  if (isPublish and not body) or (not isPublish and not m) then
    -- a body gone (expired) or a PUBREL without its id: drop the entry
    redis.call('LREM', list, 1, key)
    redis.call('HINCRBY', replay, 'end', -1)
    redis.call('HDEL', ids, 'k' .. key, 'q' .. key)
    if m then redis.call('HDEL', ids, 'm' .. m) end
    if not isPublish then redis.call('DEL', key) end
  else
    local sent = 1
    if not m then
      sent = 0
      m = free_id(ids, nextId)
      nextId = m % 65535 + 1
      redis.call('HSET', ids, 'm' .. m, key, 'k' .. key, m)
    end
    local q = redis.call('HGET', ids, 'q' .. key) or ''
    table.insert(out, key)
    table.insert(out, body)
    table.insert(out, tonumber(m))
    table.insert(out, sent)
    table.insert(out, q)
    kept = kept + 1
    bytes = bytes + #body
  end
end
out[1] = nextId
redis.call('HINCRBY', replay, 'cursor', kept)
return out
`

// KEYS: list, ids, replay. The session ends: its queue goes, with its references to message bodies.
const DROP_LUA = `${HELPERS}
for _, key in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(key, 1, 7) == 'packet:' then unref(key) else redis.call('DEL', key) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
`

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
  culexOutEnqueue(numKeys: number, ...keysThenArgs: Array<string | Buffer | number>): Promise<number>
  culexOutSent(list: string, ids: string, key: string, want: number, gen: number): Promise<number>
  culexOutPubrec(list: string, ids: string, messageId: number): Promise<number>
  culexOutAckedBuffer(list: string, ids: string, replay: string, messageId: number, withBody: '1' | '0'): Promise<Buffer | null>
  culexOutDrop(list: string, ids: string, replay: string): Promise<number>
  culexReplayStart(list: string, ids: string, replay: string, token: string): Promise<[number, number]>
  culexReplayPageBuffer(list: string, ids: string, replay: string, token: string, page: number, nextId: number, bytes: number): Promise<Array<number | Buffer>>
}

export class OutgoingStore {
  private readonly db: Scripts

  constructor(db: Redis) {
    // ioredis sends each script once (EVALSHA after that, EVAL again if Redis lost its script cache)
    db.defineCommand('culexOutEnqueue', { lua: ENQUEUE_LUA })
    db.defineCommand('culexOutSent', { numberOfKeys: 2, lua: SENT_LUA })
    db.defineCommand('culexOutPubrec', { numberOfKeys: 2, lua: PUBREC_LUA })
    db.defineCommand('culexOutAcked', { numberOfKeys: 3, lua: ACKED_LUA })
    db.defineCommand('culexOutDrop', { numberOfKeys: 3, lua: DROP_LUA })
    db.defineCommand('culexReplayStart', { numberOfKeys: 3, lua: REPLAY_START_LUA })
    db.defineCommand('culexReplayPage', { numberOfKeys: 3, lua: REPLAY_PAGE_LUA })
    this.db = db as Scripts
  }

  /**
   * Queue one message for sessions: its body once, with a reference per session, and an entry
   * at the tail of each session's queue, in one script (one round trip, atomic). A session whose
   * subscription grants a lower QoS than published gets it at that QoS on replay [MQTT-3.8.4-6].
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
    await deferredWrite(this.db, () => this.db.culexOutEnqueue(keys.length, ...keys, ...args))
  }

  /** a PUBLISH of `entry` goes out to the client with `messageId`: returns the id to use (a free one if that is taken) */
  sent(clientId: string, entry: string, messageId: number, gen: number): Promise<number> {
    return deferredWrite(this.db, () => this.db.culexOutSent(outgoingKey(clientId), outgoingIdsKey(clientId), entry, messageId, gen))
  }

  /** the client sent PUBREC: the queue entry becomes its PUBREL */
  pubrec(clientId: string, messageId: number): Promise<number> {
    return this.db.culexOutPubrec(outgoingKey(clientId), outgoingIdsKey(clientId), messageId)
  }

  /**
   * PUBACK or PUBCOMP: returns the body of the acknowledged PUBLISH if `withBody` (Aedes' 'ack'
   * event; empty for a PUBREL or when not asked), null if none was in flight
   */
  async acked(clientId: string, messageId: number, withBody: boolean): Promise<Buffer | null> {
    const body = await deferredWrite(this.db, () => this.db.culexOutAckedBuffer(outgoingKey(clientId), outgoingIdsKey(clientId), replayKey(clientId), messageId, withBody ? '1' : '0'))
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
    const [gen, entries] = await this.db.culexReplayStart(...keys, token)
    onGeneration(gen)
    if (entries === 0) return
    for (;;) {
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
    return this.db.culexOutDrop(outgoingKey(clientId), outgoingIdsKey(clientId), replayKey(clientId))
  }
}
