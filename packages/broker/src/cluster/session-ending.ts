/**
 * A session end in a cluster is one decision (a Lua script: the connection that owned the session
 * closed with a Session Expiry Interval of 0, or the sweeper found its deadline passed) and then
 * several deletions (subscriptions on every node's trie, queue, inbound QoS 2 state, Session
 * Present mark; cluster/persistence.ts endSession). A CONNECT for the same client id answered
 * between the two, on any node, would find the session partly there: Session Present 1 and its old
 * subscriptions for a session that ended [MQTT-4.1.0-2], and the late deletions would then remove
 * what the new session stored.
 *
 * So the script that decides the end also writes a marker, `culex:session-ending` (client id ->
 * `<token> <time>`), in the same step; the marker goes once every deletion is done. A CONNECT
 * (its preConnect step, before anything of the session is read: broker/conformance-session.ts)
 * waits while the marker is there, then reads the Session Present mark. A marker older than
 * STALE_MS was left by a node that died (or lost Redis) in the middle of an end: the CONNECT takes
 * it over and finishes the end itself, so no client id waits forever; the sweeper does the same
 * for the ones no client returns to (cluster/session-expiry.ts expire).
 */
import type { Redis } from 'ioredis'
import { SESSIONS_KEY, SESSION_ENDING_KEY } from './keys.js'

/** a marker this old is an end nobody is finishing any more */
export const STALE_MS = 10_000
/** how often a waiting CONNECT looks again (an end takes a few ms) */
const POLL_MS = 5

/** `now`: the Redis clock in ms (one clock for every node) */
export const NOW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`
/** Lua: mark `id` (a local) as ending, by token `tok` (a local), at `now` (needs NOW_LUA); KEYS name given */
export const markEnding = (key: string, id: string, tok: string): string => `redis.call('HSET', ${key}, ${id}, ${tok} .. ' ' .. now)`

/**
 * Lua: the locals `age` (ms) of an end of `id` in progress, or -1, and `member` (1 if the id has a
 * session, asked only when no end is in progress), from the ending hash and the sessions set named
 * (needs NOW_LUA). Also the claim's check (session-claim.ts).
 */
export const checkSessionLua = (ending: string, sessions: string, id: string): string => `
local age, member = -1, 0
local e = redis.call('HGET', ${ending}, ${id})
if e then age = now - tonumber(string.match(e, ' (%d+)$')) else member = redis.call('SISMEMBER', ${sessions}, ${id}) end
`
// KEYS[1] ending, KEYS[2] sessions set; ARGV[1] client id -> {age (ms) of an end in progress, or -1; 1 if the id has a session}
const CHECK_LUA = `${NOW_LUA}${checkSessionLua('KEYS[1]', 'KEYS[2]', 'ARGV[1]')}
return {age, member}
`
// KEYS[1] ending; ARGV[1] client id, ARGV[2] token, ARGV[3] stale ms -> 1 if the stale end is now the token's
const TAKE_LUA = `${NOW_LUA}
local e = redis.call('HGET', KEYS[1], ARGV[1])
if not e or now - tonumber(string.match(e, ' (%d+)$')) < tonumber(ARGV[3]) then return 0 end
${markEnding('KEYS[1]', 'ARGV[1]', 'ARGV[2]')}
return 1
`
// KEYS[1] ending; ARGV[1] client id, ARGV[2] token: the end by this token is done
const CLEAR_LUA = `
local e = redis.call('HGET', KEYS[1], ARGV[1])
if e and string.sub(e, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Wait until no end of `id`'s session is in progress, then answer whether the id has a session.
 * `takeOver(id)` finishes a stale end (true if it took it).
 */
export async function settle(db: Redis, id: string, takeOver: (id: string) => Promise<boolean>): Promise<boolean> {
  for (;;) {
    const [age, member] = (await db.eval(CHECK_LUA, 2, SESSION_ENDING_KEY, SESSIONS_KEY, id)) as [number, number]
    if (age < 0) return member === 1
    if (age >= STALE_MS && (await takeOver(id))) continue
    await sleep(POLL_MS)
  }
}

/** make a stale end of `id` the token's (true if it was stale and is now taken) */
export async function takeStale(db: Redis, id: string, token: string): Promise<boolean> {
  return (await db.eval(TAKE_LUA, 1, SESSION_ENDING_KEY, id, token, STALE_MS)) === 1
}

/** the client ids whose end has been in progress for STALE_MS or more (left by a node that died) */
export async function staleEnds(db: Redis): Promise<string[]> {
  const [sec, usec] = (await db.time()) as unknown as [string, string]
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000)
  const all = await db.hgetall(SESSION_ENDING_KEY)
  return Object.entries(all)
    .filter(([, v]) => now - Number(/ (\d+)$/.exec(v)?.[1] ?? now) >= STALE_MS)
    .map(([id]) => id)
}

/** the end of `id`'s session by `token` is done: its marker goes (unless a newer end replaced it) */
export async function ended(db: Redis, id: string, token: string): Promise<void> {
  await db.eval(CLEAR_LUA, 1, SESSION_ENDING_KEY, id, token)
}
