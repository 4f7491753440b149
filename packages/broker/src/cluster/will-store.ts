/**
 * The wills stored in Redis (the aedes-persistence-redis layout, docs/internals.md row P5): as
 * Aedes stores, reads and deletes them through our persistence (cluster/persistence.ts), and as
 * the will sweep (cluster/wills.ts) reads them: their form, their due time and their claim.
 */
import type { Redis } from 'ioredis'
import { NODES_KEY, WILLS_DUE_KEY, WILLS_LIST, willKey } from './keys.js'
import { decodePacket, encodePacket } from './msgpack.js'

// KEYS[1] will key, KEYS[2] will list, KEYS[3] delayed wills -> the will, removed; nil if someone else took it
const CLAIM_LUA = `
redis.call('ZREM', KEYS[3], KEYS[1])
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('LREM', KEYS[2], 0, KEYS[1])
  return false
end
redis.call('DEL', KEYS[1])
redis.call('LREM', KEYS[2], 0, KEYS[1])
return v
`
// KEYS[1] will key, KEYS[2] delayed wills; ARGV[1] delay ms -> 1 if the will is stored (and now due then)
const DELAY_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1]), KEYS[1])
return 1
`
// KEYS[1] = will list, KEYS[2] = nodes zset, KEYS[3] = delayed wills zset; ARGV[1] = encoded client id,
// ARGV[2] = own node id. Deletes `will:<node>:<client>` for every node the cluster knows
// (aedes-persistence-redis#98), and its due time if it was delayed: a client that returns, on any
// node, before its delayed will is due cancels it [MQTT-3.1.3-9] (MQTT 5; cluster/wills.ts).
const DEL_ALL_WILLS_LUA = `
local nodes = redis.call('ZRANGE', KEYS[2], 0, -1)
table.insert(nodes, ARGV[2])
local n = 0
for _, node in ipairs(nodes) do
  local key = 'will:' .. node .. ':' .. ARGV[1]
  redis.call('ZREM', KEYS[3], key)
  if redis.call('DEL', key) == 1 then
    redis.call('LREM', KEYS[1], 0, key)
    n = n + 1
  end
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

/** take the will under `key` out of Redis (and out of the list and the due times): null if someone else took it */
export async function claimWill(db: Redis, key: string): Promise<Buffer | null> {
  return (await db.callBuffer('EVAL', CLAIM_LUA, 3, key, WILLS_LIST, WILLS_DUE_KEY)) as Buffer | null
}

/** store the will of a client connected to node `nodeId` (Aedes' `putWill`) */
export async function putWill(db: Redis, nodeId: string, clientId: string, packet: Record<string, unknown>): Promise<void> {
  const key = willKey(nodeId, clientId)
  packet.clientId = clientId
  packet.brokerId = nodeId
  await db.multi().lrem(WILLS_LIST, 0, key).rpush(WILLS_LIST, key).set(key, encodePacket(packet)).exec()
}

/** the will the client left on node `nodeId` (Aedes' `getWill`) */
export async function getWill(db: Redis, nodeId: string, clientId: string): Promise<unknown> {
  const buf = await db.getBuffer(willKey(nodeId, clientId))
  return buf ? decodePacket(buf) : null
}

/** take the will the client left on node `nodeId` out of Redis: the will, or null */
export async function takeWill(db: Redis, nodeId: string, clientId: string): Promise<unknown> {
  const key = willKey(nodeId, clientId)
  const results = await db.multi().lrem(WILLS_LIST, 0, key).getBuffer(key).del(key).exec()
  const buf = results?.[1]?.[1] as Buffer | null | undefined
  return buf ? decodePacket(buf) : null
}

/** on CONNECT: delete the wills this client id left on any node, and their due times (aedes-persistence-redis#98) */
export async function delAllWills(db: Redis, clientId: string, ownNodeId: string): Promise<void> {
  await db.eval(DEL_ALL_WILLS_LUA, 3, WILLS_LIST, NODES_KEY, WILLS_DUE_KEY, encodeURIComponent(clientId), ownNodeId)
}
