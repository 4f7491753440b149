/**
 * Where shared subscription state lives. Single node: in memory (MemoryShareStore). Cluster:
 * Redis (RedisShareStore, share-redis.ts), with every node holding the membership in memory
 * (groups.ts) and kept current by change notifications.
 *
 * Three kinds of state:
 * - membership: per group, per member, its node, QoS, online or not, clean or persistent;
 * - in flight: per member, the QoS 1/2 messages handed to it and not yet acknowledged
 *   (field = message key, value = record); written by the node that picked the member
 *   BEFORE the publisher's PUBACK can leave, so a member (or its node) that dies loses
 *   nothing acknowledged: whoever removes a record from here sends it to another member;
 * - the group queue: QoS 1/2 messages kept while the group has only offline persistent
 *   members, bounded (oldest dropped), drained by the first member to come back.
 */
import type { Member } from './groups.js'
import { decode, encode, packProperties, unpackProperties } from '../cluster/msgpack.js'

/** a message of a group, as kept in flight or in the group queue */
export interface ShareRecord {
  /** group key */
  g: string
  /** topic, payload, QoS as published */
  t: string
  p: Buffer
  q: number
  /** origin broker id and counter: the message's identity */
  b: string
  c: number
  /** publisher client id */
  pub?: string
  /** MQTT 5 properties as published (user properties as pairs in the encoded record, cluster/msgpack.ts) */
  x?: Record<string, unknown>
  /** absolute expiry of the message, ms since the epoch (aedes-packet's messageExpiry) */
  e?: number
}

/**
 * A record as kept in Redis: MessagePack (cluster/msgpack.ts, msgpackr), as msgpack-lite wrote it
 * before, so records written before an upgrade are read, and by a node of the previous release.
 */
export function encodeRecord(r: ShareRecord): Buffer {
  return encode(r.x === undefined ? r : { ...r, x: packProperties(r.x) })
}
export function decodeRecord(b: Buffer): ShareRecord {
  const r = decode<ShareRecord>(b)
  if (r.x) unpackProperties(r.x)
  return r
}
/** the in-flight field of a message for a group */
export const recordKey = (r: Pick<ShareRecord, 'g' | 'b' | 'c'>): string => `${r.g}|${r.b}:${r.c}`

export interface MemberChange {
  key: string
  clientId: string
  /** null: left the group */
  member: Member | null
}

export interface ShareStore {
  /** every group's members (start-up, and after the Redis links came back) */
  load(): Promise<Array<[string, Member]>>
  /** membership changes made by any node (this one included, applied at once) */
  onChange(fn: (c: MemberChange) => void): void
  /**
   * add or update a member; resolves once every node applied it and went through its barrier
   * (below), so that a SUBACK sent then follows the PUBACK of every message picked without the
   * member (cluster: or once 2 s passed)
   */
  join(key: string, m: Member): Promise<void>
  /** what a node waits for after applying a join (ShareHost.barrier), before it acknowledges it */
  setBarrier(fn: () => Promise<void>): void
  /** write a member again, without waiting for the other nodes */
  rejoin(key: string, m: Member): Promise<void>
  /** remove a member, unless it is now connected to another node than `node` */
  leave(key: string, clientId: string, node: string): Promise<void>
  /** a persistent member's connection ended: offline, unless it is now connected to another node than `node` */
  offline(key: string, clientId: string, node: string): Promise<void>
  /** keep a record in flight for a member: issued before the message goes out (ordered before it) */
  hold(clientId: string, field: string, rec: ShareRecord): Promise<void>
  /** the member acknowledged it; true if it was still held */
  release(clientId: string, field: string): Promise<boolean>
  /** take every record held for a member (its connection ended) */
  takeAll(clientId: string): Promise<ShareRecord[]>
  /** members with records held (for the sweep of dead nodes' members) */
  holding(clientIds: string[]): Promise<string[]>
  /** true when it is known at once that no record is held for any member (memory store); a store that must ask (Redis) leaves it out */
  holdsNone?(): boolean
  /** queue a record for a group with only offline persistent members; returns how many old ones were dropped */
  enqueue(key: string, rec: ShareRecord, limit: number): Promise<number>
  /** move up to n queued records of a group into a member's in-flight records and return them */
  drain(key: string, clientId: string, n: number): Promise<ShareRecord[]>
  queued(key: string): Promise<number>
  close(): Promise<void>
}

export class MemoryShareStore implements ShareStore {
  private readonly members = new Map<string, Map<string, Member>>()
  // the records themselves (one node: nothing leaves the process, so nothing is encoded)
  private readonly inflight = new Map<string, Map<string, ShareRecord>>()
  private readonly queues = new Map<string, ShareRecord[]>()
  private readonly listeners: Array<(c: MemberChange) => void> = []
  private barrier: () => Promise<void> = () => Promise.resolve()

  setBarrier(fn: () => Promise<void>): void {
    this.barrier = fn
  }
  async load(): Promise<Array<[string, Member]>> {
    const out: Array<[string, Member]> = []
    for (const [key, ms] of this.members) for (const m of ms.values()) out.push([key, m])
    return out
  }
  onChange(fn: (c: MemberChange) => void): void {
    this.listeners.push(fn)
  }
  private emit(c: MemberChange): void {
    for (const fn of this.listeners) fn(c)
  }
  async join(key: string, m: Member): Promise<void> {
    this.put(key, m)
    await this.barrier()
  }
  async rejoin(key: string, m: Member): Promise<void> {
    this.put(key, m)
  }
  private put(key: string, m: Member): void {
    let ms = this.members.get(key)
    if (!ms) this.members.set(key, (ms = new Map()))
    ms.set(m.clientId, m)
    this.emit({ key, clientId: m.clientId, member: m })
  }
  async leave(key: string, clientId: string): Promise<void> {
    const ms = this.members.get(key)
    if (!ms?.delete(clientId)) return
    if (ms.size === 0) this.members.delete(key)
    this.emit({ key, clientId, member: null })
  }
  async offline(key: string, clientId: string): Promise<void> {
    const m = this.members.get(key)?.get(clientId)
    if (!m || !m.online) return
    const off = { ...m, online: false }
    this.members.get(key)!.set(clientId, off)
    this.emit({ key, clientId, member: off })
  }
  async hold(clientId: string, field: string, rec: ShareRecord): Promise<void> {
    let h = this.inflight.get(clientId)
    if (!h) this.inflight.set(clientId, (h = new Map()))
    h.set(field, rec)
  }
  async release(clientId: string, field: string): Promise<boolean> {
    const h = this.inflight.get(clientId)
    const had = h?.delete(field) ?? false
    if (h && h.size === 0) this.inflight.delete(clientId)
    return had
  }
  async takeAll(clientId: string): Promise<ShareRecord[]> {
    const h = this.inflight.get(clientId)
    this.inflight.delete(clientId)
    return h ? [...h.values()] : []
  }
  holdsNone(): boolean {
    return this.inflight.size === 0
  }
  async holding(clientIds: string[]): Promise<string[]> {
    return clientIds.filter((c) => (this.inflight.get(c)?.size ?? 0) > 0)
  }
  async enqueue(key: string, rec: ShareRecord, limit: number): Promise<number> {
    let q = this.queues.get(key)
    if (!q) this.queues.set(key, (q = []))
    // a queued message may wait long: its own copy of the payload, not a view that keeps the whole
    // chunk the parser read it from (an in-flight record lives until the member's PUBACK only)
    q.push({ ...rec, p: Buffer.from(rec.p) })
    const over = Math.max(0, q.length - limit)
    if (over > 0) q.splice(0, over)
    return over
  }
  async drain(key: string, clientId: string, n: number): Promise<ShareRecord[]> {
    const q = this.queues.get(key)
    if (!q) return []
    const out = q.splice(0, n)
    if (q.length === 0) this.queues.delete(key)
    for (const rec of out) await this.hold(clientId, recordKey(rec), rec)
    return out
  }
  async queued(key: string): Promise<number> {
    return this.queues.get(key)?.length ?? 0
  }
  async close(): Promise<void> {}
}
