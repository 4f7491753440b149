/**
 * A loop turn's Lua steps in one script call (cluster/script-batch.ts: a persistent session's
 * queued, sent and acknowledged steps), against a real redis-server: each step gets its own
 * result in the order taken, a step Redis refuses fails alone with Redis' own error, a turn
 * larger than one call keeps its order, and `flush()` puts the steps ahead of a command sent
 * after it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { BATCH_LOOP, MAX_BYTES, MAX_STEPS, ScriptBatch } from '../../src/cluster/script-batch.js'
import { killAll, startRedis } from '../helpers/cluster-procs.js'

const LUA = `
local function push(K, A) return redis.call('RPUSH', K[1], A[1]) end
local function get(K, A) return redis.call('GET', K[1]) end
local function pair(K, A) return { redis.call('GET', K[1]), redis.call('GET', K[2]) } end
local STEPS = { p = push, g = get, pair = pair }
${BATCH_LOOP}`

let db: Redis
let batch: ScriptBatch

beforeAll(async () => {
  db = new Redis((await startRedis()).url)
  batch = new ScriptBatch(db, 'testSteps', LUA)
})
afterAll(async () => {
  db.disconnect()
  await killAll()
})

it('the steps of a turn each get their own result, in order; a refused step fails alone with Redis\' error and the others stand', async () => {
  await db.set('sb:str', 'a string')
  await db.set('sb:x', 'x-body')
  const steps = [
    batch.run('p', ['sb:list'], ['one']),
    batch.run('p', ['sb:str'], ['refused']),
    batch.run('g', ['sb:x'], []),
    batch.run('g', ['sb:missing'], []),
    batch.run('p', ['sb:list'], ['two']),
  ]
  const settled = await Promise.allSettled(steps)
  expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : 'rejected'))).toEqual([1, 'rejected', Buffer.from('x-body'), null, 2])
  const err = (settled[1] as PromiseRejectedResult).reason as Error
  expect(err.name).toBe('ReplyError')
  expect(err.message).toMatch(/WRONGTYPE/)
  expect(await db.lrange('sb:list', 0, -1)).toEqual(['one', 'two'])
})

it(`a turn of more steps than one call takes (${MAX_STEPS}) keeps its order`, async () => {
  const n = MAX_STEPS * 2 + 17
  const results = await Promise.all(Array.from({ length: n }, (_, i) => batch.run('p', ['sb:many'], [i])))
  expect(results).toEqual(Array.from({ length: n }, (_, i) => i + 1))
  expect(await db.lrange('sb:many', 0, -1)).toEqual(Array.from({ length: n }, (_, i) => String(i)))
})

it(`a turn of more bytes than one call takes (${MAX_BYTES}) keeps its order and every byte`, async () => {
  const big = (i: number): Buffer => Buffer.alloc(300_000, i)
  const results = await Promise.all([0, 1, 2, 3, 4, 5, 6].map((i) => batch.run('p', ['sb:big'], [big(i)])))
  expect(results).toEqual([1, 2, 3, 4, 5, 6, 7])
  const stored = await db.lrangeBuffer('sb:big', 0, -1)
  expect(stored.map((b) => [b.length, b[0]])).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => [300_000, i]))
})

it('flush() sends the steps taken so far ahead of a command sent after it in the same turn', async () => {
  const pushed = batch.run('p', ['sb:order'], ['step'])
  batch.flush()
  const seen = db.lrange('sb:order', 0, -1)
  expect(await seen).toEqual(['step'])
  await pushed
})

it('a step with several keys gets them in its own order, a nested result whole', async () => {
  await db.mset('sb:k1', 'v1', 'sb:k2', 'v2')
  const [a, b] = await Promise.all([batch.run('pair', ['sb:k1', 'sb:k2'], []), batch.run('pair', ['sb:k2', 'sb:k1'], [])])
  // a step's own table comes back as an array
  expect(a).toEqual([Buffer.from('v1'), Buffer.from('v2')])
  expect(b).toEqual([Buffer.from('v2'), Buffer.from('v1')])
})

it('[MQTT-4.3.2-2] Redis at maxmemory refuses the writing steps with its OOM error; a reading step in the same call is answered', async () => {
  await db.config('SET', 'maxmemory', '1')
  try {
    const [write, read] = await Promise.allSettled([batch.run('p', ['sb:oom'], ['x']), batch.run('g', ['sb:x'], [])])
    expect(write.status).toBe('rejected')
    expect(((write as PromiseRejectedResult).reason as Error).message).toMatch(/^OOM command not allowed/)
    expect(read).toEqual({ status: 'fulfilled', value: Buffer.from('x-body') })
  } finally {
    await db.config('SET', 'maxmemory', '0')
  }
  expect(await db.exists('sb:oom')).toBe(0)
})
