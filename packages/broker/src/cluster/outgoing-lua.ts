/**
 * The Lua of the persistent session queues in Redis (outgoing.ts says what the keys hold). The
 * steps every delivery takes (queue, sent, PUBREC, acknowledged) are functions of one script,
 * `STEPS_LUA`, which runs a loop turn's steps of a node in one call (script-batch.ts); the rare
 * ones (replay, drop) are scripts of their own. Scripts build `packet:*` and PUBREL keys from list
 * entries: one Redis, not Redis Cluster.
 */
import { BATCH_LOOP } from './script-batch.js'

/** a replay's position outlives a node that died during it by this much at most (renewed each page) */
const REPLAY_TTL_S = 3600

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

// K: the body's key, its reference count's, then per session its list (and its ids hash when
// its subscription grants a lower QoS). A: body, number of sessions, then per session that
// lower QoS or ''. A message queued for sessions: its body once, a reference per session, an
// entry at the tail of each session's queue.
const ENQUEUE = `
local function enqueue(K, A)
  redis.call('MSET', K[1], A[1], K[2], A[2])
  local k = 3
  for i = 3, #A do
    redis.call('RPUSH', K[k], K[1])
    k = k + 1
    if A[i] ~= '' then
      redis.call('HSET', K[k], 'q' .. K[1], A[i])
      k = k + 1
    end
  end
  return 1
end
`

// K: list, ids. A: entry key, packet id wanted, connection generation (0: unknown).
// A PUBLISH goes out: record its id. Returns the id to use: the one wanted unless another
// in-flight message of the session has it. A connection the session has left (a newer one
// started its replay: higher generation `g`) records nothing: its late deliveries (a node
// closing it, a takeover) must not replace the ids the newer connection sent and is acking.
// (The generation, the wanted id's entry and this entry's id in one HMGET.)
const SENT = `
local function sent(K, A)
  local key, want, gen = A[1], tonumber(A[2]), tonumber(A[3])
  local cur = redis.call('HMGET', K[2], 'g', 'm' .. want, 'k' .. key)
  if gen > 0 and gen < tonumber(cur[1] or '0') then return want end
  if cur[2] == key then return want end
  local m = want
  if cur[2] then m = free_id(K[2], want % 65535 + 1) end
  local old = cur[3]
  if old then redis.call('HDEL', K[2], 'm' .. old) end
  redis.call('HSET', K[2], 'm' .. m, key, 'k' .. key, m)
  return m
end
`

// K: list, ids. A: packet id. PUBREC received: the entry becomes a PUBREL, in place.
const PUBREC = `
local function pubrec(K, A)
  local m = A[1]
  local key = redis.call('HGET', K[2], 'm' .. m)
  if not key or string.sub(key, 1, 7) ~= 'packet:' then return 0 end
  local pos = redis.call('LPOS', K[1], key)
  if not pos then return 0 end
  local rel = K[1] .. ':' .. string.sub(key, 8)
  redis.call('LSET', K[1], pos, rel)
  redis.call('SET', rel, m)
  unref(key)
  redis.call('HDEL', K[2], 'k' .. key, 'q' .. key)
  redis.call('HSET', K[2], 'm' .. m, rel, 'k' .. rel, m)
  return 1
end
`

// K: list, ids, replay. A: packet id, '1' to return the body. PUBACK/PUBCOMP received: the
// entry leaves the queue. Returns the acknowledged message's body when asked ('' for a PUBREL or
// when not asked, false when nothing was in flight): only Aedes' 'ack' event carries it, and a
// node with no listener for it does not have it read, sent and decoded on every acknowledgement.
// While a replay runs, its position moves back when the entry was before it; without one, no
// LPOS (LREM removes the same first occurrence).
const ACKED = `
local function acked(K, A)
  local m = A[1]
  local key = redis.call('HGET', K[2], 'm' .. m)
  if not key then return false end
  redis.call('HDEL', K[2], 'm' .. m, 'k' .. key, 'q' .. key)
  local r = redis.call('HMGET', K[3], 'cursor', 'end')
  if r[1] or r[2] then
    local pos = redis.call('LPOS', K[1], key)
    if not pos then return '' end
    redis.call('LREM', K[1], 1, key)
    if r[1] and pos < tonumber(r[1]) then redis.call('HINCRBY', K[3], 'cursor', -1) end
    if r[2] and pos < tonumber(r[2]) then redis.call('HINCRBY', K[3], 'end', -1) end
  elseif redis.call('LREM', K[1], 1, key) == 0 then
    return ''
  end
  if string.sub(key, 1, 7) == 'packet:' then
    local body = ''
    if A[2] == '1' then body = redis.call('GET', key) or '' end
    unref(key)
    return body
  end
  redis.call('DEL', key)
  return ''
end
`

/** the steps' names in STEPS_LUA, as script-batch.ts sends them */
export const STEP = { enqueue: 'e', sent: 's', pubrec: 'r', acked: 'a' } as const

/** a loop turn's queue steps, in the order they were taken (script-batch.ts BATCH_LOOP) */
export const STEPS_LUA = `${HELPERS}${ENQUEUE}${SENT}${PUBREC}${ACKED}
local STEPS = { ${STEP.enqueue} = enqueue, ${STEP.sent} = sent, ${STEP.pubrec} = pubrec, ${STEP.acked} = acked }
${BATCH_LOOP}`

// KEYS: list, ids, replay. ARGV: token. A connection of the session starts: its generation
// (field g of the ids hash) is one above the last; its replay starts where the queue starts and
// ends where it ends now. Returns {generation, number of entries (0: nothing to replay)}.
export const REPLAY_START_LUA = `
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
export const REPLAY_PAGE_LUA = `${HELPERS}
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
export const DROP_LUA = `${HELPERS}
for _, key in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(key, 1, 7) == 'packet:' then unref(key) else redis.call('DEL', key) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
`
