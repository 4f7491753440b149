/**
 * The wills stored in Redis (the aedes-persistence-redis layout, docs/internals.md row P5) as the
 * will sweep (cluster/wills.ts) reads them: their form, their due time and their claim.
 */
import type { Redis } from 'ioredis'
import { WILLS_DUE_KEY, WILLS_LIST } from './keys.js'

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
