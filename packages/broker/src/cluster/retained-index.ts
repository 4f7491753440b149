/**
 * An index of the retained messages' topics, so that a wildcard SUBSCRIBE costs Redis in
 * proportion to the topics under its filter's literal prefix rather than to every retained
 * message (docs/cluster.md "Retained messages at scale").
 *
 * aedes-persistence-redis keeps retained messages in one hash (`retained`: topic -> message) and
 * finds a wildcard filter's by an HSCAN of the whole hash with MATCH `<prefix>*`: Redis reads every
 * field for each such SUBSCRIBE (~1 µs each). Beside it the cluster keeps `culex:retained:index`,
 * a sorted set of the same topics (all scores 0), changed in the same script as the hash by the
 * connection aedes-persistence-redis writes with (seam P16 indexRetainedWrites). A wildcard
 * SUBSCRIBE reads the topics under the filters' common literal prefix (up to the first wildcard:
 * `devices/17/` for `devices/17/#`, whose parent `devices/17` is one HGET) with ZRANGEBYLEX, a
 * page at a time, matches them in the node and fetches the matching messages with HMGET.
 *
 * The index is used only while it holds as many topics as the hash (one script checks HLEN =
 * ZCARD and reads the first page). It does not when something wrote the hash without it: a node of
 * an earlier release during a rolling upgrade, a hand-made HSET. Then the SUBSCRIBE reads the hash
 * as before (HSCAN) and the index is repaired: one node at a time (a lock) adds every topic of the
 * hash it lacks and removes every topic the hash no longer has, a step at a time in one script
 * each, when the node starts, and whenever the counts are found apart (a check every
 * CHECK_EVERY_MS, and a SUBSCRIBE that found them so). What the counts cannot show: a node of an
 * earlier release adding one topic and deleting another between two checks (the index then
 * misses the new topic). In a rolling upgrade the last node to restart is the last old one gone,
 * and its repair at start comes after every write of the earlier release.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { QlobberTrue } from 'qlobber'
import { MQTT_QLOBBER_OPTIONS } from '../broker/filter-set.js'
import type { Logger } from '../log.js'
import { filterMatches } from '../shared/names.js'
import { RETAINED_HASH, RETAINED_INDEX, decodeRetained } from '../seam/index.js'
import { commonPrefix, lexRange, listPlan, scanPrefix, type LexBound } from './retained-ranges.js'
import { literalPrefix, parentOf, wildcardAt } from '../broker/topic-filter.js'
import { releaseLock, takeLock } from './will-lock.js'

/** topics read from the index per step */
const PAGE = 1000
/**
 * hash fields the repair reads per script call: HSCAN reads their messages too, inside Redis (up to
 * max_packet_size each: 20 MB at the default 1 MB; 200-byte messages: 4 KB)
 */
const ADD_STEP = 20
/** index members the repair checks per script call */
const DROP_STEP = 1000
/** how often the counts are compared (HLEN, ZCARD) */
const CHECK_EVERY_MS = 60_000
/** the repair after a node starts */
const FIRST_REPAIR_MS = 2_000
/** at most one repair this often after SUBSCRIBEs found the counts apart */
const MISMATCH_REPAIR_MS = 10_000
const LOCK_KEY = 'culex:lock:retained-index'
const LOCK_TTL_MS = 60_000

// KEYS[1] hash, KEYS[2] index; ARGV[1] min, ARGV[2] max, ARGV[3] page size:
// the index's first page under the range, or false if the index and the hash count apart
const FIRST_PAGE_LUA = `
if redis.call('HLEN', KEYS[1]) ~= redis.call('ZCARD', KEYS[2]) then return false end
return redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
`
// KEYS[1] hash, KEYS[2] index; ARGV[1] cursor, ARGV[2] count: every topic of a step of the hash into
// the index; the next cursor
const ADD_MISSING_LUA = `
local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local f = r[2]
for i = 1, #f, 2 do redis.call('ZADD', KEYS[2], 0, f[i]) end
return r[1]
`
// KEYS[1] hash, KEYS[2] index; ARGV[1] cursor, ARGV[2] count: the topics of a step of the index the
// hash no longer has out of it; the next cursor
const DROP_STALE_LUA = `
local r = redis.call('ZSCAN', KEYS[2], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local m = r[2]
for i = 1, #m, 2 do
  if redis.call('HEXISTS', KEYS[1], m[i]) == 0 then redis.call('ZREM', KEYS[2], m[i]) end
end
return r[1]
`
// KEYS[1] hash, KEYS[2] index; ARGV[1] offset, ARGV[2] limit, ARGV[3] a topic ('' none), ARGV[4..]
// min/max pairs of index ranges: how many of the topic (if retained) and the ranges' members there
// are, and the page of them at offset in that order; false if the index and the hash count apart
const LIST_LUA = `
if redis.call('HLEN', KEYS[1]) ~= redis.call('ZCARD', KEYS[2]) then return false end
local offset = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local total = 0
local page = {}
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then
  total = 1
  if offset > 0 then offset = offset - 1 elseif limit > 0 then page[1] = ARGV[3]; limit = limit - 1 end
end
for i = 4, #ARGV, 2 do
  local n = redis.call('ZLEXCOUNT', KEYS[2], ARGV[i], ARGV[i + 1])
  total = total + n
  if offset >= n then offset = offset - n
  elseif limit > 0 then
    local got = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[i], ARGV[i + 1], 'LIMIT', offset, limit)
    for j = 1, #got do page[#page + 1] = got[j] end
    limit = limit - #got
    offset = 0
  end
end
return {total, page}
`

/** the topics of the retained messages a filter matches, in byte order: how many, and a page of them */
export interface RetainedPage {
  total: number
  topics: string[]
}

export class RetainedIndex {
  private readonly owner = randomBytes(8).toString('hex')
  private timer?: NodeJS.Timeout
  private lastMismatchRepair = 0
  private repairing?: Promise<void>
  private closed = false
  /** repairs this node made, and SUBSCRIBEs that found the index and the hash apart */
  readonly stats = { repairs: 0, mismatches: 0 }

  constructor(
    private readonly db: Redis,
    private readonly log: Logger,
  ) {}

  /** a repair soon after start, then one whenever a check finds the counts apart */
  start(): void {
    const tick = (delay: number, step: () => Promise<void>): void => {
      this.timer = setTimeout(() => {
        void step().finally(() => !this.closed && tick(CHECK_EVERY_MS, () => this.check()))
      }, delay)
      this.timer.unref()
    }
    tick(FIRST_REPAIR_MS, () => this.repair())
  }

  private async check(): Promise<void> {
    try {
      const counts = (await this.db.multi().hlen(RETAINED_HASH).zcard(RETAINED_INDEX).exec()) ?? []
      if (counts[0]?.[1] !== counts[1]?.[1]) await this.repair()
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'retained index: not checked')
    }
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  /**
   * The retained messages of one SUBSCRIBE's filters (aedes-persistence-redis'
   * createRetainedStreamCombi): filters without a wildcard by HGET, then those with one through
   * the index; `scan` (the hash read as before) when there is no wildcard or the index is not usable.
   */
  async *match(patterns: string[], scan: () => AsyncIterable<unknown>): AsyncGenerator<unknown> {
    const wild = patterns.filter((p) => wildcardAt(p) !== -1)
    if (wild.length === 0) return yield* scan()
    const [min, max] = lexRange(commonPrefix(wild.map(literalPrefix)))
    let page = (await this.db.eval(FIRST_PAGE_LUA, 2, RETAINED_HASH, RETAINED_INDEX, min, max, PAGE)) as string[] | null
    if (page === null) {
      this.mismatch()
      return yield* scan()
    }
    const filter = new QlobberTrue(MQTT_QLOBBER_OPTIONS)
    for (const p of wild) filter.add(p)
    // the filters without a wildcard, and the parent level of each `.../#`, one HGET each
    const single = new Set(patterns.filter((p) => wildcardAt(p) === -1))
    for (const p of wild) {
      const parent = parentOf(p)
      if (parent !== undefined) single.add(parent)
    }
    const sent = new Set<string>()
    for (const t of single) {
      const value = await this.db.hgetBuffer(RETAINED_HASH, t)
      if (!value) continue
      sent.add(t)
      yield decodeRetained(value)
    }
    for (;;) {
      const topics = page.filter((t) => !sent.has(t) && filter.test(t))
      if (topics.length > 0) {
        for (const value of await this.db.hmgetBuffer(RETAINED_HASH, ...topics)) if (value) yield decodeRetained(value)
      }
      if (page.length < PAGE) return
      page = await this.db.zrangebylex(RETAINED_INDEX, Buffer.from(`(${page[page.length - 1]}`), max, 'LIMIT', 0, PAGE)
    }
  }

  /**
   * The topics of the retained messages `filter` matches, in byte order (the index's), and how many
   * there are: for `#`, a topic and for a literal path with a final `/#`, counted and paged inside
   * Redis (ZLEXCOUNT, ZRANGEBYLEX with LIMIT) at any number of retained messages; for other filters
   * the members under the literal prefix, a page at a time. Undefined while the index and the hash
   * count apart (a repair follows): the caller reads the hash.
   */
  async list(filter: string, offset: number, limit: number): Promise<RetainedPage | undefined> {
    const plan = listPlan(filter)
    if (plan.kind === 'exact') {
      const args: LexBound[] = [String(offset), String(limit), plan.topic ?? '', ...plan.ranges.flat()]
      const r = (await this.db.eval(LIST_LUA, 2, RETAINED_HASH, RETAINED_INDEX, ...args)) as [number, string[]] | null
      if (r === null) return this.mismatch()
      return { total: r[0], topics: r[1] }
    }
    const all = await this.matching(filter, plan.range)
    return all && { total: all.length, topics: all.slice(offset, offset + limit) }
  }

  /** every topic of a retained message `filter` matches, in byte order, read by pages; undefined as for list() */
  all(filter: string): Promise<string[] | undefined> {
    return this.matching(filter, lexRange(scanPrefix(filter)))
  }

  /** the members of `range` that `filter` matches, read a page at a time */
  private async matching(filter: string, [min, max]: [LexBound, LexBound]): Promise<string[] | undefined> {
    let page = (await this.db.eval(FIRST_PAGE_LUA, 2, RETAINED_HASH, RETAINED_INDEX, min, max, PAGE)) as string[] | null
    if (page === null) return this.mismatch()
    const levels = filter.split('/')
    const found: string[] = []
    for (;;) {
      for (const t of page) if (filterMatches(levels, t)) found.push(t)
      if (page.length < PAGE) return found
      page = await this.db.zrangebylex(RETAINED_INDEX, Buffer.from(`(${page[page.length - 1]}`), max, 'LIMIT', 0, PAGE)
    }
  }

  private mismatch(): undefined {
    this.stats.mismatches++
    this.repairSoon()
    return undefined
  }

  /** a repair soon, at most once per MISMATCH_REPAIR_MS */
  private repairSoon(): void {
    const now = Date.now()
    if (now - this.lastMismatchRepair < MISMATCH_REPAIR_MS) return
    this.lastMismatchRepair = now
    setImmediate(() => void this.repair())
  }

  /** the index made to hold exactly the hash's topics, by the one node holding the lock */
  repair(): Promise<void> {
    this.repairing ??= this.repairOnce().finally(() => (this.repairing = undefined))
    return this.repairing
  }

  private async repairOnce(): Promise<void> {
    try {
      if (!(await takeLock(this.db, LOCK_KEY, this.owner, LOCK_TTL_MS))) return
      try {
        for (const [script, step] of [[ADD_MISSING_LUA, ADD_STEP], [DROP_STALE_LUA, DROP_STEP]] as const) {
          let cursor = '0'
          do {
            if (this.closed) return
            cursor = (await this.db.eval(script, 2, RETAINED_HASH, RETAINED_INDEX, cursor, step)) as string
            await takeLock(this.db, LOCK_KEY, this.owner, LOCK_TTL_MS)
          } while (cursor !== '0')
        }
        this.stats.repairs++
      } finally {
        await releaseLock(this.db, LOCK_KEY, this.owner)
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'retained index: repair not finished (the next one goes on)')
    }
  }
}
