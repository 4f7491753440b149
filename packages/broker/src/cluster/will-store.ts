/**
 * The wills stored in Redis (the aedes-persistence-redis layout, docs/internals.md row P5): as
 * Aedes stores, reads and deletes them through our persistence (cluster/persistence.ts), and as
 * the will sweep (cluster/wills.ts) reads them: their form, their due time and their claim.
 */
import type { Redis } from 'ioredis'
import { NODES_KEY, WILLS_DUE_KEY, WILLS_LIST, WILLS_LISTED_KEY, willKey } from './keys.js'
import { decodePacket, encodePacket } from './msgpack.js'

// KEYS[1] will key, KEYS[2] delayed wills -> the will, removed; nil if someone else took it. Its
// entry in the will list stays (compactWills removes it)
const CLAIM_LUA = `
redis.call('ZREM', KEYS[2], KEYS[1])
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1])
return v
`
// KEYS[1] will key, KEYS[2] will list, KEYS[3] listed set; ARGV[1] the will. The key goes on the
// list once: the set says which keys the list holds (an LREM scans the whole list: ~2 ms of Redis
// per call at 100,000 wills, on every CONNECT with a will and every close before)
const PUT_LUA = `
if redis.call('SADD', KEYS[3], KEYS[1]) == 1 then redis.call('RPUSH', KEYS[2], KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`
// KEYS[1] will list, KEYS[2] listed set; ARGV[1] entries -> { entries looked at, dropped }. One
// step of a compaction: the first ARGV[1] entries go to the end of the list if their will is
// stored (once each), else off it and out of the set
const COMPACT_STEP_LUA = `
local keys = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #keys == 0 then return { 0, 0 } end
redis.call('LTRIM', KEYS[1], #keys, -1)
local keep, seen = {}, {}
for _, k in ipairs(keys) do
  if not seen[k] then
    seen[k] = true
    if redis.call('EXISTS', k) == 1 then keep[#keep + 1] = k else redis.call('SREM', KEYS[2], k) end
  end
end
if #keep > 0 then redis.call('RPUSH', KEYS[1], unpack(keep)) end
return { #keys, #keys - #keep }
`
/** entries per compaction step: ~1 ms of Redis each */
const COMPACT_STEP = 500
// KEYS[1] will key, KEYS[2] delayed wills; ARGV[1] delay ms -> 1 if the will is stored (and now due then)
const DELAY_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1]), KEYS[1])
return 1
`
// KEYS[1] = nodes zset, KEYS[2] = delayed wills zset; ARGV[1] = encoded client id,
// ARGV[2] = own node id. Deletes `will:<node>:<client>` for every node the cluster knows
// (aedes-persistence-redis#98), and its due time if it was delayed: a client that returns, on any
// node, before its delayed will is due cancels it [MQTT-3.1.3-9] (MQTT 5; cluster/wills.ts).
const DEL_ALL_WILLS_LUA = `
local nodes = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(nodes, ARGV[2])
local n = 0
for _, node in ipairs(nodes) do
  local key = 'will:' .. node .. ':' .. ARGV[1]
  redis.call('ZREM', KEYS[2], key)
  n = n + redis.call('DEL', key)
end
return n
`

/** a will as it is stored (msgpack, cluster/msgpack.ts decodePacket) */
export interface StoredWill {
  topic: string
  payload?: Buffer
  qos?: 0 | 1 | 2
  retain?: boolean
  properties?: Record<string, unknown>
  clientId?: string
}

/** seconds a will waits after its client went: its Will Delay Interval, at most the session's expiry (`plan`, seconds; < 0 never) */
export function willDelayS(will: StoredWill, plan: number | undefined): number {
  const delay = Number(will.properties?.willDelayInterval ?? 0)
  return plan !== undefined && plan >= 0 ? Math.min(delay, plan) : delay
}

/** the will under `key`, if it is stored, is due in `delayMs` (Redis clock): resolves to 1 if it is stored */
export function delayWill(db: Redis, key: string, delayMs: number): Promise<unknown> {
  return db.eval(DELAY_LUA, 2, key, WILLS_DUE_KEY, delayMs)
}

/** take the will under `key` out of Redis (and out of the due times; its list entry stays until compactWills): null if someone else took it */
export async function claimWill(db: Redis, key: string): Promise<Buffer | null> {
  return (await db.callBuffer('EVAL', CLAIM_LUA, 2, key, WILLS_DUE_KEY)) as Buffer | null
}

/** store the will of a client connected to node `nodeId` (Aedes' `putWill`) */
export async function putWill(db: Redis, nodeId: string, clientId: string, packet: Record<string, unknown>): Promise<void> {
  const key = willKey(nodeId, clientId)
  packet.clientId = clientId
  packet.brokerId = nodeId
  await db.eval(PUT_LUA, 3, key, WILLS_LIST, WILLS_LISTED_KEY, encodePacket(packet))
}

/** the will the client left on node `nodeId` (Aedes' `getWill`) */
export async function getWill(db: Redis, nodeId: string, clientId: string): Promise<unknown> {
  const buf = await db.getBuffer(willKey(nodeId, clientId))
  return buf ? decodePacket(buf) : null
}

/** take the will the client left on node `nodeId` out of Redis: the will, or null */
export async function takeWill(db: Redis, nodeId: string, clientId: string): Promise<unknown> {
  const key = willKey(nodeId, clientId)
  const results = await db.multi().getBuffer(key).del(key).exec()
  const buf = results?.[0]?.[1] as Buffer | null | undefined
  return buf ? decodePacket(buf) : null
}

/** on CONNECT: delete the wills this client id left on any node, and their due times (aedes-persistence-redis#98) */
export async function delAllWills(db: Redis, clientId: string, ownNodeId: string): Promise<void> {
  await db.eval(DEL_ALL_WILLS_LUA, 2, NODES_KEY, WILLS_DUE_KEY, encodeURIComponent(clientId), ownNodeId)
}

/**
 * The will list without the entries of wills no longer stored (taken at a close, claimed by a
 * sweep, deleted by a CONNECT elsewhere), which stay on it until this runs: once over the list in
 * steps of COMPACT_STEP entries (each atomic, ~1 ms of Redis), in place of an LREM over the whole
 * list per will stored and taken. Run by the sweeping node every COMPACT_MS (cluster/wills.ts).
 * Returns the entries looked at and dropped.
 */
export async function compactWills(db: Redis): Promise<{ looked: number; dropped: number }> {
  const total = await db.llen(WILLS_LIST)
  let looked = 0
  let dropped = 0
  while (looked < total) {
    const [n, d] = (await db.eval(COMPACT_STEP_LUA, 2, WILLS_LIST, WILLS_LISTED_KEY, Math.min(COMPACT_STEP, total - looked))) as [number, number]
    if (n === 0) break
    looked += n
    dropped += d
  }
  return { looked, dropped }
}

/**
 * Every will key stored or once stored, each once: the list (what a release before this one
 * wrote) and the set. The set has a key the list lacks when a node of the release before removed
 * its entry (its LREM, a CONNECT of the client there) and the client stored its will here again.
 */
export async function listedWillKeys(db: Redis): Promise<string[]> {
  const keys = new Set(await db.lrange(WILLS_LIST, 0, -1))
  let cursor = '0'
  do {
    const [next, members] = await db.sscan(WILLS_LISTED_KEY, cursor, 'COUNT', 1000)
    for (const m of members) keys.add(m)
    cursor = next
  } while (cursor !== '0')
  return [...keys]
}

/**
 * Of `keys`, those whose will is stored, in order: the list keeps the entries of wills taken since
 * its last compaction, and a sweep settles each will with several round trips, so a node's start
 * or a dead node's sweep asks first, 1000 keys per round trip
 */
export async function storedWills(db: Redis, keys: string[]): Promise<string[]> {
  const stored: string[] = []
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000)
    const p = db.pipeline()
    for (const k of chunk) p.exists(k)
    const res = (await p.exec()) ?? []
    chunk.forEach((k, j) => {
      if (res[j]?.[1] === 1) stored.push(k)
    })
  }
  return stored
}
