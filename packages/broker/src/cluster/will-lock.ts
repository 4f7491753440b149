/**
 * The lock of the will sweep (cluster/wills.ts): one node at a time holds `culex:lock:wills`,
 * taken or renewed at each sweep for three sweep intervals, released when the node stops. The
 * same owner-checked lock on another key serves the retained index's repair (retained-index.ts).
 */
import type { Redis } from 'ioredis'
import { WILL_LOCK_KEY } from './keys.js'

// KEYS[1] lock; ARGV[1] owner, ARGV[2] ttl ms -> 1 if we hold it (taken or renewed)
const LOCK_LUA = `
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`
const UNLOCK_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/** take the lock `key` for `owner`, or renew it if `owner` holds it already: true if `owner` holds it for `ttlMs` */
export async function takeLock(db: Redis, key: string, owner: string, ttlMs: number): Promise<boolean> {
  return (await db.eval(LOCK_LUA, 1, key, owner, ttlMs)) === 1
}

/** release the lock `key` if `owner` holds it */
export function releaseLock(db: Redis, key: string, owner: string): Promise<unknown> {
  return db.eval(UNLOCK_LUA, 1, key, owner)
}

/** the will sweep's lock (takeLock on WILL_LOCK_KEY) */
export const takeWillLock = (db: Redis, owner: string, ttlMs: number): Promise<boolean> => takeLock(db, WILL_LOCK_KEY, owner, ttlMs)

/** release the will sweep's lock if `owner` holds it */
export const releaseWillLock = (db: Redis, owner: string): Promise<unknown> => releaseLock(db, WILL_LOCK_KEY, owner)
