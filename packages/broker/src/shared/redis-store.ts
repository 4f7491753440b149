/**
 * Shared subscription state in Redis (cluster mode); see store.ts for what each part is for.
 *
 * Keys (ours, `culex:share:*`; group keys and client ids URI-encoded):
 *   culex:share:groups            set of group keys with members
 *   culex:share:g:<group key>     hash client id -> member JSON {n node, q qos, o online, c clean}
 *   culex:share:fl:<client id>    hash message key -> record (msgpack), in flight to that member
 *   culex:share:q:<group key>     list of records waiting for a member to come back
 * Changes are published on SHARE_CHANNEL by the script that makes them (one atomic step), and
 * every other node acknowledges a join on SHARE_ACK_CHANNEL once applied, so a SUBACK leaves only
 * when every node would pick the new member (as subscription-sync.ts does for subscriptions); and once
 * through its barrier (ShareHost.barrier: an empty share-only message through its emitter), so
 * the PUBACK of every message a node picked (no member yet) before it applied the join has left
 * before the SUBACK: a message acknowledged to its publisher after the SUBACK is one picked with
 * the member [MQTT-3.8.4-1]. The same for the joining node itself. A node that dies or hangs
 * meanwhile costs at most ACK_TIMEOUT_MS (then a warning, and the SUBACK). Costs nothing per
 * message: one share channel round trip and one bus message per node, per $share SUBSCRIBE.
 * The in-flight records are written on the link that carries the cluster bus (`pub`): Redis
 * runs them before the bus batch that carries the message, so the member's node never sees a
 * message whose record is not there yet.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { AckWaits } from '../cluster/ack-wait.js'
import { deferredWrite } from '../seam/index.js'
import type { Member } from './groups.js'
import { decodeRecord, encodeRecord, type MemberChange, type ShareRecord, type ShareStore } from './store.js'

/** '#' cannot appear in an MQTT topic name, so no client can publish onto these (as subscription-sync.ts) */
export const SHARE_CHANNEL = 'culex#share'
export const SHARE_ACK_CHANNEL = 'culex#share-ack'
export const GROUPS_KEY = 'culex:share:groups'
export const groupKey = (key: string): string => `culex:share:g:${encodeURIComponent(key)}`
export const inflightKey = (clientId: string): string => `culex:share:fl:${encodeURIComponent(clientId)}`
export const queueKey = (key: string): string => `culex:share:q:${encodeURIComponent(key)}`
const ACK_TIMEOUT_MS = 2000

interface Wire {
  n: string
  q: number
  o: 0 | 1
  c: 0 | 1
}
const toWire = (m: Member): string => JSON.stringify({ n: m.node, q: m.qos, o: m.online ? 1 : 0, c: m.clean ? 1 : 0 } satisfies Wire)
export const fromWire = (clientId: string, s: string): Member => {
  const w = JSON.parse(s) as Wire
  return { clientId, node: w.n, qos: w.q, online: w.o === 1, clean: w.c === 1 }
}

// KEYS: group hash, groups set. ARGV: group key, client id, member JSON, channel, ack key
const JOIN_LUA = `
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('PUBLISH', ARGV[4], cjson.encode({k = ARGV[1], c = ARGV[2], m = ARGV[3], a = ARGV[5]}))
`
// KEYS: group hash, groups set. ARGV: group key, client id, node, channel, mode ('leave' | 'offline').
// Only while the member's record names `node`: a member that reconnected elsewhere is left alone.
const LEAVE_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return 0 end
local m = cjson.decode(cur)
if m.n ~= ARGV[3] then return 0 end
local out = false
if ARGV[5] == 'offline' then
  if m.o == 0 then return 0 end
  m.o = 0
  out = cjson.encode(m)
  redis.call('HSET', KEYS[1], ARGV[2], out)
else
  redis.call('HDEL', KEYS[1], ARGV[2])
  if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
end
redis.call('PUBLISH', ARGV[4], cjson.encode({k = ARGV[1], c = ARGV[2], m = out}))
return 1
`
// KEYS: in-flight hash. Returns every record and deletes them.
const TAKE_LUA = `
local v = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
return v
`
// KEYS: queue list. ARGV: record, limit. Returns how many old ones were dropped.
const ENQUEUE_LUA = `
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
local over = n - tonumber(ARGV[2])
if over > 0 then redis.call('LTRIM', KEYS[1], over, -1) return over end
return 0
`
// KEYS: queue list. ARGV: n. Pops up to n records (the router holds them for the member next).
const DRAIN_LUA = `
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local r = redis.call('LPOP', KEYS[1])
  if not r then break end
  table.insert(out, r)
end
return out
`

type Scripts = Redis & {
  culexShareJoin(...args: Array<string | number>): Promise<number>
  culexShareLeave(...args: Array<string | number>): Promise<number>
  culexShareTakeBuffer(key: string): Promise<Buffer[]>
  culexShareEnqueue(key: string, rec: Buffer, limit: number): Promise<number>
  culexShareDrainBuffer(queue: string, n: number): Promise<Buffer[]>
}

function define(db: Redis): Scripts {
  db.defineCommand('culexShareJoin', { numberOfKeys: 2, lua: JOIN_LUA })
  db.defineCommand('culexShareLeave', { numberOfKeys: 2, lua: LEAVE_LUA })
  db.defineCommand('culexShareTake', { numberOfKeys: 1, lua: TAKE_LUA })
  db.defineCommand('culexShareEnqueue', { numberOfKeys: 1, lua: ENQUEUE_LUA })
  db.defineCommand('culexShareDrain', { numberOfKeys: 1, lua: DRAIN_LUA })
  return db as Scripts
}

export class RedisShareStore implements ShareStore {
  private readonly db: Scripts
  private readonly pub: Scripts
  private readonly listeners: Array<(c: MemberChange) => void> = []
  private readonly acks = new AckWaits(ACK_TIMEOUT_MS)
  private barrier: () => Promise<void> = () => Promise.resolve()
  private readonly onMessage = (chBuf: Buffer, message: Buffer): void => {
    const ch = chBuf.toString()
    if (ch === SHARE_ACK_CHANNEL) {
      this.acks.ack(message.toString())
      return
    }
    if (ch !== SHARE_CHANNEL) return
    let msg: { k?: unknown; c?: unknown; m?: unknown; a?: unknown }
    try {
      msg = JSON.parse(message.toString()) as typeof msg
    } catch {
      return
    }
    if (typeof msg.k !== 'string' || typeof msg.c !== 'string') return
    const member = typeof msg.m === 'string' ? fromWire(msg.c, msg.m) : null
    for (const fn of this.listeners) fn({ key: msg.k, clientId: msg.c, member })
    // a join made on another node: acknowledged once this node's earlier messages are through
    const ack = msg.a
    if (typeof ack === 'string' && ack !== '' && !this.acks.waiting(ack)) {
      this.barrier()
        .then(() => this.pub.publish(SHARE_ACK_CHANNEL, ack))
        .catch(() => {})
    }
  }

  constructor(
    db: Redis,
    pub: Redis,
    private readonly sub: Redis,
    private readonly log: Logger,
  ) {
    this.db = define(db)
    this.pub = define(pub)
    sub.on('messageBuffer', this.onMessage)
  }

  async start(): Promise<void> {
    await this.sub.subscribe(SHARE_CHANNEL, SHARE_ACK_CHANNEL)
  }

  async load(): Promise<Array<[string, Member]>> {
    const keys = await this.db.smembers(GROUPS_KEY)
    const out: Array<[string, Member]> = []
    const p = this.db.pipeline()
    for (const k of keys) p.hgetall(groupKey(k))
    const res = (await p.exec()) ?? []
    res.forEach(([err, hash], i) => {
      if (err || !hash) return
      for (const [clientId, s] of Object.entries(hash as Record<string, string>)) out.push([keys[i]!, fromWire(clientId, s)])
    })
    return out
  }

  onChange(fn: (c: MemberChange) => void): void {
    this.listeners.push(fn)
  }

  setBarrier(fn: () => Promise<void>): void {
    this.barrier = fn
  }

  /** write a member again without waiting for the other nodes (re-assertion, share-router.ts) */
  async rejoin(key: string, m: Member): Promise<void> {
    await this.db.culexShareJoin(groupKey(key), GROUPS_KEY, key, m.clientId, toWire(m), SHARE_CHANNEL, '')
  }

  async join(key: string, m: Member): Promise<void> {
    // applied here at once (the notification comes back too, and changes nothing)
    for (const fn of this.listeners) fn({ key, clientId: m.clientId, member: m })
    let ownDone = false
    const own = this.barrier().then(() => void (ownDone = true))
    // written before the SUBACK in any case (an error here is SUBACK 0x80, share-aedes.ts)
    await this.acks.announce(
      (ack) => this.db.culexShareJoin(groupKey(key), GROUPS_KEY, key, m.clientId, toWire(m), SHARE_CHANNEL, ack),
      (seen, expected) => this.log.warn({ group: key, client: m.clientId, acks: seen, expected, own: ownDone }, 'shared subscription not acknowledged by every node in time'),
      own,
    )
  }

  async leave(key: string, clientId: string, node: string): Promise<void> {
    await this.db.culexShareLeave(groupKey(key), GROUPS_KEY, key, clientId, node, SHARE_CHANNEL, 'leave')
  }

  async offline(key: string, clientId: string, node: string): Promise<void> {
    await this.db.culexShareLeave(groupKey(key), GROUPS_KEY, key, clientId, node, SHARE_CHANNEL, 'offline')
  }

  async hold(clientId: string, field: string, rec: ShareRecord): Promise<void> {
    // on the bus link: ordered before the batch that carries the message (header); written with
    // that batch, or at the end of the turn: one write for a turn's records, not one per publish
    // (seam/ioredis.ts deferredWrite). A record may so land a loop turn after its pick: a sweep
    // lets a clean member with nothing held leave only at the next sweep (router.ts sweepDead)
    await deferredWrite(this.pub, () => this.pub.hset(inflightKey(clientId), field, encodeRecord(rec)))
  }

  async release(clientId: string, field: string): Promise<boolean> {
    // on the bus link too: a member on the picking node can acknowledge before a HSET sent on
    // another link would have run, which would leave the record behind
    return (await deferredWrite(this.pub, () => this.pub.hdel(inflightKey(clientId), field))) === 1
  }

  async takeAll(clientId: string): Promise<ShareRecord[]> {
    return (await this.db.culexShareTakeBuffer(inflightKey(clientId))).map(decodeRecord)
  }

  async holding(clientIds: string[]): Promise<string[]> {
    if (clientIds.length === 0) return []
    const p = this.db.pipeline()
    for (const c of clientIds) p.hlen(inflightKey(c))
    const res = (await p.exec()) ?? []
    return clientIds.filter((_, i) => Number(res[i]?.[1] ?? 0) > 0)
  }

  enqueue(key: string, rec: ShareRecord, limit: number): Promise<number> {
    return this.pub.culexShareEnqueue(queueKey(key), encodeRecord(rec), limit)
  }

  async drain(key: string, clientId: string, n: number): Promise<ShareRecord[]> {
    return (await this.db.culexShareDrainBuffer(queueKey(key), n)).map(decodeRecord)
  }

  queued(key: string): Promise<number> {
    return this.db.llen(queueKey(key))
  }

  async close(): Promise<void> {
    this.sub.off('messageBuffer', this.onMessage)
  }
}

/** every group with its members and queue length, for `culex cluster status --json` */
export async function listGroups(db: Redis): Promise<Array<{ group: string; filter: string; members: Array<Member>; queued: number }>> {
  const keys = (await db.smembers(GROUPS_KEY)).sort()
  const out = []
  for (const k of keys) {
    const [hash, queued] = await Promise.all([db.hgetall(groupKey(k)), db.llen(queueKey(k))])
    const slash = k.indexOf('/')
    out.push({ group: k.slice(0, slash), filter: k.slice(slash + 1), members: Object.entries(hash).map(([c, s]) => fromWire(c, s)), queued })
  }
  return out
}
