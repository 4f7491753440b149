/**
 * The Redis scripts of cluster session expiry (session-expiry.ts): each decides one step of a
 * session's end atomically, over the owner hash, the per-node sessions, the deadlines and the
 * ending marks (keys.ts; marks: session-ending.ts).
 */
import { NOW_LUA, markEnding } from './session-ending.js'

// KEYS[1] owner, KEYS[2] node sessions, KEYS[3] deadlines, KEYS[4] ending; ARGV[1] client id, ARGV[2] token,
// ARGV[3] plan -> 'moved' (a newer connection owns the session), 'end' (marked as ending:
// session-ending.ts), 'keep' or 'expiring'
export const RELEASE_LUA = `${NOW_LUA}
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[2], ARGV[1]) end
local owner = redis.call('HGET', KEYS[1], ARGV[1])
local plan = tonumber(ARGV[3])
if owner and string.sub(owner, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if plan == 0 then
    ${markEnding('KEYS[4]', 'ARGV[1]', 'ARGV[2]')}
    return 'end'
  end
else
  plan = nil
end
-- not ending: a mark of this connection's DISCONNECT goes
local e = redis.call('HGET', KEYS[4], ARGV[1])
if e and string.sub(e, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then redis.call('HDEL', KEYS[4], ARGV[1]) end
if not plan then return 'moved' end
if plan < 0 then return 'keep' end
redis.call('ZADD', KEYS[3], now + plan * 1000, ARGV[1])
return 'expiring'
`
// KEYS[1] owner, KEYS[2] ending; ARGV[1] client id, ARGV[2] token: a DISCONNECT of the connection
// that owns the session ends it (its release follows)
export const MARK_LUA = `${NOW_LUA}
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and string.sub(owner, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then ${markEnding('KEYS[2]', 'ARGV[1]', 'ARGV[2]')} end
return 0
`
// KEYS[1] owner, KEYS[2] the dead node's sessions, KEYS[3] deadlines; ARGV[1] time (ms) the node
// is taken to have died -> flat [client id, plan, ...] of the sessions it still owned
export const ADOPT_LUA = `
local flat = redis.call('HGETALL', KEYS[2])
local out = {}
for i = 1, #flat, 2 do
  local id, token = flat[i], flat[i + 1]
  local owner = redis.call('HGET', KEYS[1], id)
  if owner and string.sub(owner, 1, #token + 1) == token .. ' ' then
    redis.call('HDEL', KEYS[1], id)
    local plan = tonumber(string.sub(owner, #token + 2))
    if plan >= 0 then redis.call('ZADD', KEYS[3], tonumber(ARGV[1]) + plan * 1000, id) end
    table.insert(out, id)
    table.insert(out, tostring(plan))
  end
end
redis.call('DEL', KEYS[2])
return out
`
// KEYS[1] deadlines, KEYS[2] owner, KEYS[3] ending; ARGV[1] most to take, ARGV[2] token -> client
// ids whose session expired (each marked as ending: session-ending.ts)
export const EXPIRE_LUA = `${NOW_LUA}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    ${markEnding('KEYS[3]', 'id', 'ARGV[2]')}
    table.insert(out, id)
  end
end
return out
`
// KEYS[1] owner, KEYS[2] node sessions, KEYS[3] deadlines; ARGV[1] client id, ARGV[2] token,
// ARGV[3] plan -> 1 if the connection owns its session again (no other connection took it)
export const REASSERT_LUA = `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and string.sub(owner, 1, #ARGV[2] + 1) ~= ARGV[2] .. ' ' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`
