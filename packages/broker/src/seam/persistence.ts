/**
 * The seam to aedes-persistence 11, aedes-persistence-redis 12 and the qlobber build they use
 * (docs/internals.md, rows P* and A7/A8/C10): deep imports of files their packages do not
 * export as API, the Redis key layout our cluster code shares with aedes-persistence-redis,
 * and the persistence instance Aedes holds. test/seam/contract.test.ts checks each.
 */
import type { Redis } from 'ioredis'
import { deferredWrite } from './ioredis.js'
import { createRequire } from 'node:module'
import { Readable, Transform } from 'node:stream'
import type { Aedes } from 'aedes'
import { persistenceOf } from './aedes-broker.js'

const require = createRequire(import.meta.url)

/** aedes-persistence's callback/stream layer that Aedes calls, over an async persistence core */
export const CallBackPersistence = (require('aedes-persistence/callBackPersistence.js') as typeof import('aedes-persistence/callBackPersistence.js'))
  .CallBackPersistence
type AsyncRedisPersistenceClass = typeof import('aedes-persistence-redis/asyncPersistence.js')
let asyncRedis: AsyncRedisPersistenceClass | undefined
/**
 * aedes-persistence-redis' async core (retained messages, inbound QoS 2 state), required at its
 * first use: a node in memory loads neither it nor ioredis and msgpack-lite, which it requires
 */
export function asyncRedisPersistence(): AsyncRedisPersistenceClass {
  return (asyncRedis ??= require('aedes-persistence-redis/asyncPersistence.js') as AsyncRedisPersistenceClass)
}
/** the subscription trie aedes-persistence builds on (qlobber's Aedes flavour) */
export const QlobberSub = require('qlobber/aedes/qlobber-sub.js') as typeof import('qlobber/aedes/qlobber-sub.js')
/** the form aedes-persistence stores a message in (aedes-packet's Packet) */
export const StoredPacket = (require('aedes-persistence') as { Packet: new (p: object) => object }).Packet

// ---- aedes-persistence-redis' Redis layout (persistence.js): our code reads and writes the same keys

/** list of will keys */
export const WILLS_LIST = 'will'
/** hash: topic -> msgpack retained message (a single Redis or Sentinel; Redis Cluster would use `retained:<topic>` keys) */
export const RETAINED_HASH = 'retained'

/** fields of the retained hash one HSCAN step asks for (scanRetainedInPages) */
export const RETAINED_SCAN_COUNT = 1000

/**
 * P15 aedes-persistence-redis (asyncPersistence.js singleMatchRetained) finds the retained messages
 * of a SUBSCRIBE with a wildcard by `db.hscanBufferStream('retained', { match: '<prefix>*' })` on
 * the connection it was given, without a COUNT: Redis' default of 10 fields per step, so with
 * 100,000 retained messages every such SUBSCRIBE took ~10,000 round trips on the node's data link
 * (and they went on after the client left). Here that connection's hscanBufferStream asks for
 * RETAINED_SCAN_COUNT fields per step of the retained hash; other keys as asked. Redis still walks
 * the whole hash for each one (its MATCH filters what it returns, not what it reads).
 */
export function scanRetainedInPages<T extends { hscanBufferStream(key: string, opts?: { match?: string; count?: number }): unknown }>(db: T): T {
  const scan = db.hscanBufferStream.bind(db)
  db.hscanBufferStream = (key, opts) => scan(key, key === RETAINED_HASH ? { count: RETAINED_SCAN_COUNT, ...opts } : opts)
  return db
}
/** sorted set of the retained hash's topics (every score 0, read in lex order): cluster/retained-index.ts */
export const RETAINED_INDEX = 'culex:retained:index'

interface RetainedWrites {
  hset(...args: unknown[]): Promise<number>
  hdel(...args: unknown[]): Promise<number>
  defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void
  culexRetainedSet(hash: string, index: string, topic: string, value: unknown): Promise<number>
  culexRetainedDel(hash: string, index: string, ...topics: string[]): Promise<number>
}

// KEYS[1] hash, KEYS[2] index; ARGV[1] topic, ARGV[2] message
const RETAINED_SET_LUA = `
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
`
// KEYS[1] hash, KEYS[2] index; ARGV: topics
const RETAINED_DEL_LUA = `
redis.call('ZREM', KEYS[2], unpack(ARGV))
return redis.call('HDEL', KEYS[1], unpack(ARGV))
`

/**
 * P16 aedes-persistence-redis (asyncPersistence.js `#storeRetained`) stores a retained message
 * with `db.hset(RETAINED_HASH, topic, msgpack)` and deletes one with `db.hdel(RETAINED_HASH,
 * topic)`, on the connection it was built with. On that connection those calls, for the retained
 * hash only, become one script (EVALSHA) that also adds the topic to RETAINED_INDEX or removes
 * it: the index changes with the hash, atomically. Other keys as asked.
 */
export function indexRetainedWrites<T>(conn: T): T {
  const db = conn as unknown as RetainedWrites
  const hset = db.hset.bind(db)
  const hdel = db.hdel.bind(db)
  db.defineCommand('culexRetainedSet', { numberOfKeys: 2, lua: RETAINED_SET_LUA })
  db.defineCommand('culexRetainedDel', { numberOfKeys: 2, lua: RETAINED_DEL_LUA })
  // a retained PUBLISH's write waits for the next command that cannot, or the end of the turn (R2):
  // Aedes stores each in its own immediate, and a write per message woke Redis once each
  const redis = conn as unknown as Redis
  db.hset = (key, ...args) =>
    key === RETAINED_HASH && args.length === 2
      ? deferredWrite(redis, () => db.culexRetainedSet(RETAINED_HASH, RETAINED_INDEX, String(args[0]), args[1]))
      : hset(key, ...args)
  db.hdel = (key, ...fields) =>
    key === RETAINED_HASH && fields.length > 0 ? deferredWrite(redis, () => db.culexRetainedDel(RETAINED_HASH, RETAINED_INDEX, ...fields.map(String))) : hdel(key, ...fields)
  return conn
}

let msgpackLite: { decode(buf: Buffer): unknown } | undefined
/** a retained message as aedes-persistence-redis stored it (msgpack-lite, its own dependency) */
export function decodeRetained(value: Buffer): unknown {
  msgpackLite ??= createRequire(require.resolve('aedes-persistence-redis/asyncPersistence.js'))('msgpack-lite') as { decode(buf: Buffer): unknown }
  return msgpackLite.decode(value)
}

/** set of the client ids that have subscriptions */
export const CLIENTS_SET = 'clients'
export const willKey = (brokerId: string, clientId: string): string => `will:${brokerId}:${encodeURIComponent(clientId)}`
/** hash: topic filter -> msgpack subscription */
export const clientSubsKey = (clientId: string): string => `client:${encodeURIComponent(clientId)}`
/** list of a session's queued messages */
export const outgoingKey = (clientId: string): string => `outgoing:${encodeURIComponent(clientId)}`
/** a queued message's body (and the queue entry that refers to it) */
export const packetKey = (p: { brokerId?: string | null; brokerCounter?: number | string }): string => `packet:${p.brokerId}:${p.brokerCounter}`

/**
 * On CONNECT Aedes calls delWill(client) before it sets client.brokerId (lib/handlers/connect.js),
 * so aedes-persistence-redis deletes `will:undefined:<id>` (aedes-persistence-redis#98, PR #110):
 * true when a delWill call is that one.
 */
export const isDelWillOnConnect = (client: { brokerId?: string }): boolean => client.brokerId === undefined

/**
 * `map` each entry of a session's queue as Aedes replays it on CONNECT (lib/handlers/connect.js
 * emptyQueue reads persistence.outgoingStream(client)); the stored entries are not changed.
 * For aedes-persistence's memory store, which replays with DUP 0 (aedes#601, aedes PR #603).
 */
export function mapSessionReplay<T>(broker: Aedes, map: (entry: T) => T): void {
  const persistence = persistenceOf(broker) as { outgoingStream(client: unknown): AsyncIterable<T> }
  const outgoingStream = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client) => {
    const queue = outgoingStream(client)
    // the memory store's queue is a Readable (Readable.from of an array, which never errors): a
    // synchronous Transform maps it, cheaper than an async generator on every CONNECT, empty
    // queues included (issue 15, connects/s)
    if (queue instanceof Readable) return queue.pipe(new Transform({ objectMode: true, transform: (p: T, _enc, cb) => cb(null, map(p)) }))
    return Readable.from(
      (async function* () {
        for await (const p of queue) yield map(p)
      })(),
    )
  }
}
