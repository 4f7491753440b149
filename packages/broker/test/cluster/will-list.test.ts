/**
 * The list of stored wills in Redis (`will`, aedes-persistence-redis' layout; cluster/will-store.ts)
 * without an LREM per will stored or taken. An LREM scans the whole list: at 100,000 wills each
 * CONNECT with a will and each close before it cost Redis ~2 ms, so a reconnect storm of devices
 * with wills (online/offline status) held Redis, and every node's bus behind it, for minutes.
 * Now a set (`culex:wills:listed`) says which keys the list holds, so a key goes on it once; a
 * taken or claimed will leaves its entry, and the sweeping node compacts the list every minute,
 * in steps of 500 entries. What must hold: every stored will is among the keys the sweeps read
 * (listedWillKeys: the list and the set), a compaction drops exactly the entries of wills no longer
 * stored, and what a release before this one wrote (double entries; an entry its LREM removed
 * while our set has it) loses no will.
 *
 * On a real redis-server, through the functions the persistence and the sweeper call.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { NODES_KEY, WILLS_LIST, WILLS_LISTED_KEY, willKey } from '../../src/cluster/keys.js'
import { claimWill, compactWills, delAllWills, getWill, listedWillKeys, putWill, storedWills, takeWill } from '../../src/cluster/will-store.js'
import { killAll, startRedis } from '../helpers/cluster-procs.js'

let db: Redis
const NODE = 'node-aaaaaaaaaa'
const will = (topic: string): Record<string, unknown> => ({ cmd: 'publish', topic, payload: Buffer.from('offline'), qos: 1, retain: false })
const client = (id: string) => ({ id })
const listed = async (): Promise<string[]> => db.lrange(WILLS_LIST, 0, -1)

beforeAll(async () => {
  const redis = await startRedis()
  db = new Redis(redis.url)
})
beforeEach(async () => {
  await db.flushall()
  // the cluster's registry knows NODE (a CONNECT deletes the client's wills under every node it knows)
  await db.zadd(NODES_KEY, Date.now() + 60_000, NODE)
})
afterAll(async () => {
  db.disconnect()
  await killAll()
})

it('a will stored again after each close stays on the list once, and is found there while stored', async () => {
  for (let i = 0; i < 5; i++) {
    await putWill(db, NODE, 'dev-1', will('status/dev-1'))
    expect(await listed()).toEqual([willKey(NODE, 'dev-1')])
    expect(await getWill(db, NODE, 'dev-1')).toMatchObject({ topic: 'status/dev-1', clientId: 'dev-1' })
    // the client closes cleanly: its will is taken (not published), its entry stays until a compaction
    expect(await takeWill(db, NODE, 'dev-1')).toMatchObject({ topic: 'status/dev-1' })
    expect(await getWill(db, NODE, 'dev-1')).toBeNull()
  }
  await putWill(db, NODE, 'dev-1', will('status/dev-1'))
  expect(await listed()).toEqual([willKey(NODE, 'dev-1')])
  // a CONNECT of the same client id (on any node) deletes it: its entry stays too
  await delAllWills(db, client('dev-1').id, 'node-bbbbbbbbbb')
  expect(await getWill(db, NODE, 'dev-1')).toBeNull()
})

it('a compaction drops the entries of wills taken, claimed or deleted, and keeps those stored, over many steps', async () => {
  const N = 1800
  const p = db.pipeline()
  for (let i = 0; i < N; i++) p.set(willKey(NODE, `dev-${i}`), 'x').rpush(WILLS_LIST, willKey(NODE, `dev-${i}`)).sadd(WILLS_LISTED_KEY, willKey(NODE, `dev-${i}`))
  await p.exec()
  await putWill(db, NODE, 'dev-0', will('status/dev-0'))
  expect(await db.llen(WILLS_LIST)).toBe(N)
  for (let i = 0; i < 300; i++) await takeWill(db, NODE, `dev-${i}`)
  for (let i = 300; i < 600; i++) expect(await claimWill(db, willKey(NODE, `dev-${i}`))).not.toBeNull()
  for (let i = 600; i < 900; i++) await delAllWills(db, `dev-${i}`, 'node-bbbbbbbbbb')
  expect(await db.llen(WILLS_LIST)).toBe(N)

  expect(await compactWills(db)).toEqual({ looked: N, dropped: 900 })
  const keys = Array.from({ length: 900 }, (_, i) => willKey(NODE, `dev-${900 + i}`)).sort()
  expect((await listed()).sort()).toEqual(keys)
  expect((await db.smembers(WILLS_LISTED_KEY)).sort()).toEqual(keys)
  expect((await listedWillKeys(db)).sort()).toEqual(keys)
  // nothing more to drop
  expect(await compactWills(db)).toEqual({ looked: 900, dropped: 0 })
  // a will stored again after the compaction goes back on the list, once
  await putWill(db, NODE, 'dev-3', will('status/dev-3'))
  await putWill(db, NODE, 'dev-3', will('status/dev-3'))
  expect((await listed()).filter((k) => k === willKey(NODE, 'dev-3'))).toHaveLength(1)
})

it('what the release before wrote (double entries, an entry its LREM removed while our set has it) loses no will', async () => {
  const kept = willKey(NODE, 'old-1')
  const moved = willKey(NODE, 'moved')
  await putWill(db, NODE, 'moved', will('status/moved'))
  // the release before: LREM + RPUSH + SET per will; it knows no set. Then ours stores the same key
  await db.multi().lrem(WILLS_LIST, 0, kept).rpush(WILLS_LIST, kept).set(kept, 'x').exec()
  await putWill(db, NODE, 'old-1', will('status/old-1'))
  // a node of the release before deletes `moved` on the client's CONNECT there (its LREM), then the
  // client comes back here and stores its will again: our set says it is listed, the list lacks it
  await db.multi().lrem(WILLS_LIST, 0, moved).del(moved).exec()
  await putWill(db, NODE, 'moved', will('status/moved'))
  expect(await listed()).toEqual([kept, kept])
  // the sweeps read the list and the set: both wills are found
  expect((await listedWillKeys(db)).sort()).toEqual([kept, moved].sort())
  // a compaction makes the double entry one
  expect(await compactWills(db)).toEqual({ looked: 2, dropped: 1 })
  expect(await listed()).toEqual([kept])
  expect((await listedWillKeys(db)).sort()).toEqual([kept, moved].sort())
})

it('a sweep settles only the listed wills still stored (a start or a dead node\'s sweep asks first, 1000 keys a round trip)', async () => {
  const keys: string[] = []
  for (let i = 0; i < 2500; i++) {
    await putWill(db, NODE, `dev-${i}`, will(`status/dev-${i}`))
    keys.push(willKey(NODE, `dev-${i}`))
  }
  for (let i = 0; i < 2500; i++) if (i % 7 !== 0) await takeWill(db, NODE, `dev-${i}`)
  const stored = await storedWills(db, await listedWillKeys(db))
  expect(stored.sort()).toEqual(keys.filter((_, i) => i % 7 === 0).sort())
  expect(await storedWills(db, [])).toEqual([])
})
