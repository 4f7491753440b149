/**
 * Shared subscriptions across the cluster: who gets each message, and what happens to it when
 * its member goes away. The Aedes side (share-aedes.ts) calls in here; no Aedes internals here.
 *
 * - The node that receives a PUBLISH picks one online member per matching group from its
 *   in-memory membership (no Redis round trip) and writes the choice into the message
 *   (`share`: [group key, member, member's node] per group), which the cluster bus carries to
 *   every node (bus-codec.ts), so nodes never disagree. For QoS 1/2 it first records the message
 *   as in flight to that member (store.ts), so the PUBACK to the publisher never leaves before
 *   the message is safe from the member's node dying.
 * - The member's node delivers it at the member's QoS; the member's PUBACK/PUBCOMP releases it.
 * - A member gone between the choice and the delivery, a member whose connection ends with
 *   messages unacknowledged, and the members of a dead node (sweepDead, one node at a time):
 *   whoever takes the records out of the store sends them to another online member
 *   ("redispatch", a share-only message on the bus, REDISPATCH_TOPIC), or, when only offline
 *   persistent members are left, to the group queue, which the next member to come back drains.
 */
import type { Logger } from '../log.js'
import { ShareGroups, type Member } from './groups.js'
import type { Strategy } from './strategy.js'
import { decodeRecord, encodeRecord, recordKey, type ShareRecord, type ShareStore } from './store.js'

/** one choice carried with a message: group key, member client id, member's node */
export type ShareChoice = [string, string, string]

/** a message as the emitter carries it (aedes-packet Packet plus our fields) */
export interface SharePacket {
  cmd?: string
  topic: string
  payload: Buffer
  qos: number
  retain?: boolean
  brokerId?: string
  brokerCounter?: number
  clientId?: string
  /** the members picked for it, one per matching group */
  share?: ShareChoice[]
  /** a redispatch: the message's own topic (its `topic` is REDISPATCH_TOPIC) */
  shareTopic?: string
}

/**
 * Topic of share-only messages (a redispatch to another member): it starts with `$`, so no
 * subscription starting with a wildcard matches it [MQTT-4.7.2-1], and `#` inside a level makes
 * it impossible as a filter [MQTT-4.7.1-2], so no client subscription ever matches it.
 */
export const REDISPATCH_TOPIC = '$culex#share'

/** what a member is sent: brokerId marks a share delivery and names its in-flight record */
export interface MemberPacket {
  cmd: 'publish'
  topic: string
  payload: Buffer
  qos: number
  retain: false
  dup: false
  brokerId: string
  brokerCounter: number
  clientId?: string
}
const DELIVERY_PREFIX = '$share|'
/** the in-flight record of a delivered share packet, from the brokerId/counter it went out with; undefined: not a share delivery */
export function fieldOfDelivery(brokerId: unknown, brokerCounter: unknown): string | undefined {
  return typeof brokerId === 'string' && brokerId.startsWith(DELIVERY_PREFIX) ? `${brokerId.slice(DELIVERY_PREFIX.length)}:${Number(brokerCounter)}` : undefined
}

/** the Aedes node, as the router needs it (share-aedes.ts) */
export interface ShareHost {
  /** the connected client object with this id on this node */
  client(clientId: string): object | undefined
  /** hand a message to a local client (its QoS already the member's) */
  deliver(client: object, packet: MemberPacket, cb: () => void): void
  /** a share-only message to every node (this one included) */
  emit(packet: SharePacket): void
  /** the node is stopping: its emitter closes */
  stopping(): boolean
}

export interface GroupStats {
  messages: number
  redispatched: number
  dropped: number
}

export interface RouterOptions {
  nodeId: string
  strategy: Strategy
  queueLimit: number
  store: ShareStore
  log: Logger
}

const DRAIN_PAGE = 200

export class ShareRouter {
  readonly groups = new ShareGroups()
  readonly stats = new Map<string, GroupStats>()
  private host?: ShareHost
  /** members connected here: client id -> the connection and its groups (key -> QoS) */
  private readonly local = new Map<string, { conn: object; groups: Map<string, number>; clean: boolean }>()
  private live: (node: string) => boolean = () => true

  constructor(private readonly o: RouterOptions) {
    o.store.onChange((c) => (c.member ? this.groups.set(c.key, c.member) : this.groups.remove(c.key, c.clientId)))
  }

  async start(host: ShareHost): Promise<void> {
    this.host = host
    await this.reload()
  }

  /** the membership from the store (start, Redis links back) */
  async reload(): Promise<void> {
    this.groups.reset(await this.o.store.load())
  }

  /** cluster: which nodes are live (registry), so members of a dead node are not picked */
  setLive(live: (node: string) => boolean): void {
    this.live = (n) => n === this.o.nodeId || live(n)
  }

  stat(key: string): GroupStats {
    let s = this.stats.get(key)
    if (!s) this.stats.set(key, (s = { messages: 0, redispatched: 0, dropped: 0 }))
    return s
  }

  // ---- the node that receives the PUBLISH --------------------------------------------------

  /** pick the members of every matching group; resolves once QoS 1/2 messages are held for them */
  choose(p: SharePacket): Promise<unknown> | undefined {
    if (p.share !== undefined || (p.cmd !== undefined && p.cmd !== 'publish')) return undefined
    const keys = this.groups.match(p.topic)
    if (keys.length === 0) return undefined
    const choices: ShareChoice[] = []
    let waits: Array<Promise<unknown>> | undefined
    for (const key of keys) {
      const st = this.stat(key)
      st.messages++
      const m = this.groups.pick(key, this.o.strategy, { node: this.o.nodeId, topic: p.topic, publisher: p.clientId, random: Math.random }, this.live)
      const rec = p.qos > 0 ? this.recordOf(p, key) : undefined
      if (m) {
        choices.push([key, m.clientId, m.node])
        if (rec) (waits ??= []).push(this.o.store.hold(m.clientId, recordKey(rec), encodeRecord(rec)))
      } else if (rec && this.groups.hasOfflinePersistent(key)) {
        ;(waits ??= []).push(this.o.store.enqueue(key, encodeRecord(rec), this.o.queueLimit).then((n) => (st.dropped += n)))
      } else st.dropped++
    }
    if (choices.length > 0) p.share = choices
    return waits && Promise.all(waits)
  }

  private recordOf(p: SharePacket, key: string): ShareRecord {
    const rec: ShareRecord = { g: key, t: p.shareTopic ?? p.topic, p: p.payload, q: p.qos, b: String(p.brokerId ?? this.o.nodeId), c: Number(p.brokerCounter ?? 0) }
    if (p.clientId !== undefined) rec.pub = p.clientId
    return rec
  }

  // ---- every node: deliver what was picked for members connected here ----------------------

  dispatch(p: SharePacket, cb: () => void): void {
    const choices = p.share
    if (!choices) return cb()
    let pending = 1
    const done = (): void => {
      if (--pending === 0) cb()
    }
    for (const [key, clientId, node] of choices) {
      if (node !== this.o.nodeId) continue
      const rec = this.recordOf(p, key)
      const here = this.local.get(clientId)
      const qos = here?.groups.get(key)
      const conn = this.host!.client(clientId)
      if (here && qos !== undefined && conn === here.conn) {
        pending++
        this.send(conn, rec, qos, done)
      } else this.gone(rec, clientId)
    }
    done()
  }

  private send(conn: object, rec: ShareRecord, qos: number, cb: () => void): void {
    this.host!.deliver(
      conn,
      {
        cmd: 'publish',
        topic: rec.t,
        payload: rec.p,
        qos: Math.min(rec.q, qos),
        retain: false, // [MQTT-3.3.1-9]: a live message for an established subscription
        dup: false,
        brokerId: `${DELIVERY_PREFIX}${rec.g}|${rec.b}`,
        brokerCounter: rec.c,
        ...(rec.pub !== undefined ? { clientId: rec.pub } : {}),
      },
      cb,
    )
  }

  /** the picked member is not (or no longer) here: the message goes to another one */
  private gone(rec: ShareRecord, clientId: string): void {
    // a stopping node's emitter is closing: the record stays for another node's sweep
    if (this.host!.stopping()) return
    if (rec.q === 0) return this.redispatch(rec, clientId)
    // whoever removes the record sends it on; nobody else can
    this.o.store.release(clientId, recordKey(rec)).then(
      (had) => had && this.redispatch(rec, clientId),
      (err: Error) => this.o.log.warn({ err: err.message, group: rec.g }, 'shared subscription: release failed'),
    )
  }

  private redispatch(rec: ShareRecord, exclude: string): void {
    const st = this.stat(rec.g)
    st.redispatched++
    const m = this.groups.pick(rec.g, this.o.strategy, { node: this.o.nodeId, topic: rec.t, publisher: rec.pub, random: Math.random }, this.live, exclude)
    const fail = (err: Error): void => this.o.log.warn({ err: err.message, group: rec.g }, 'shared subscription: redispatch failed')
    if (m) {
      // held first: Redis runs it before the bus batch that carries the message (redis-store.ts)
      if (rec.q > 0) this.o.store.hold(m.clientId, recordKey(rec), encodeRecord(rec)).catch(fail)
      this.host!.emit({
        cmd: 'publish',
        topic: REDISPATCH_TOPIC,
        shareTopic: rec.t,
        payload: rec.p,
        qos: rec.q,
        retain: false,
        brokerId: rec.b,
        brokerCounter: rec.c,
        ...(rec.pub !== undefined ? { clientId: rec.pub } : {}),
        share: [[rec.g, m.clientId, m.node]],
      })
    } else if (rec.q > 0 && this.groups.hasOfflinePersistent(rec.g)) {
      this.o.store.enqueue(rec.g, encodeRecord(rec), this.o.queueLimit).then((n) => (st.dropped += n), fail)
    } else st.dropped++
  }

  // ---- membership, from the member's node ----------------------------------------------------

  /** a client subscribed to a group (or its persistent session was restored) on this node */
  async join(conn: object, clientId: string, clean: boolean, key: string, qos: number): Promise<void> {
    let here = this.local.get(clientId)
    if (!here || here.conn !== conn) {
      this.local.set(clientId, (here = { conn, groups: new Map(), clean }))
      // what an earlier connection of this client left unacknowledged (its node died, or it
      // reconnected before the sweep) goes to the others now, before this one is picked again
      await this.takeAndRedispatch(clientId)
    }
    here.groups.set(key, qos)
    await this.o.store.join(key, { clientId, node: this.o.nodeId, qos, online: true, clean })
  }

  /** UNSUBSCRIBE (or a clean session's end) of some filters */
  leave(conn: object, clientId: string, keys: string[]): void {
    const here = this.local.get(clientId)
    for (const key of keys) {
      if (here?.conn === conn) here.groups.delete(key)
      this.o.store.leave(key, clientId, this.o.nodeId).catch((err: Error) => this.o.log.warn({ err: err.message }, 'shared subscription: leave failed'))
    }
  }

  /** a clean session starts: it is in no group any more, wherever it was; what it had in flight goes to others */
  async cleanStart(clientId: string): Promise<void> {
    const leaving: Array<Promise<void>> = []
    for (const key of this.groups.keys()) {
      const m = this.groups.get(key, clientId)
      if (m) leaving.push(this.o.store.leave(key, clientId, m.node))
    }
    await Promise.all(leaving)
    await this.takeAndRedispatch(clientId)
  }

  /**
   * A connection ended: its groups see it offline, its unacknowledged messages go to other
   * members, then a clean session leaves its groups. A node that is stopping leaves the records
   * where they are: its emitter is closing, and the sweep of another node sends them on.
   */
  async ended(conn: object, clientId: string): Promise<void> {
    const here = this.local.get(clientId)
    // a newer connection of the same client took over here: it holds the membership now
    if (!here || here.conn !== conn) return
    this.local.delete(clientId)
    const keys = [...here.groups.keys()]
    await Promise.all(keys.map((key) => this.o.store.offline(key, clientId, this.o.nodeId)))
    // applied here at once: the redispatch below must see it (the notification comes later)
    for (const key of keys) this.markOffline(key, clientId, this.o.nodeId)
    if (this.host!.stopping()) return
    // the client is connected to another node already: what is held now may be that connection's;
    // this one's leftovers go when that one ends (or at its next start, join)
    const moved = keys.some((key) => {
      const m = this.groups.get(key, clientId)
      return m !== undefined && m.online && m.node !== this.o.nodeId
    })
    if (!moved) await this.takeAndRedispatch(clientId)
    if (here.clean) await Promise.all(keys.map((key) => this.o.store.leave(key, clientId, this.o.nodeId)))
  }

  private markOffline(key: string, clientId: string, node: string): void {
    const m = this.groups.get(key, clientId)
    if (m && m.online && m.node === node) this.groups.set(key, { ...m, online: false })
  }

  private async takeAndRedispatch(clientId: string): Promise<void> {
    for (const buf of await this.o.store.takeAll(clientId)) this.redispatch(decodeRecord(buf), clientId)
  }

  /** the member acknowledged a share delivery (PUBACK, PUBCOMP) */
  acked(clientId: string, field: string): void {
    this.o.store.release(clientId, field).catch(() => {})
  }

  /** a member is connected here and subscribed: it drains its groups' queues */
  async drainFor(clientId: string): Promise<void> {
    const here = this.local.get(clientId)
    if (!here) return
    for (const [key, qos] of here.groups) {
      for (;;) {
        const recs = await this.o.store.drain(key, clientId, DRAIN_PAGE)
        if (recs.length === 0) break
        for (const buf of recs) {
          const rec = decodeRecord(buf)
          await this.o.store.hold(clientId, recordKey(rec), buf)
          if (this.host!.client(clientId) === here.conn) this.send(here.conn, rec, qos, () => {})
          else this.gone(rec, clientId)
        }
      }
    }
  }

  /**
   * Cluster, one node at a time: members of dead nodes go offline (persistent) or leave
   * (clean), and every offline member's records in flight go to other members.
   */
  async sweepDead(): Promise<void> {
    const offline: Array<[string, Member]> = []
    const writes: Array<Promise<void>> = []
    for (const key of this.groups.keys()) {
      for (const m of this.groups.members(key)) {
        if (m.online && !this.live(m.node)) {
          writes.push(this.o.store.offline(key, m.clientId, m.node))
          this.markOffline(key, m.clientId, m.node)
        }
        if (!m.online || !this.live(m.node)) offline.push([key, m])
      }
    }
    await Promise.all(writes)
    for (const c of await this.o.store.holding([...new Set(offline.map(([, m]) => m.clientId))])) await this.takeAndRedispatch(c)
    // clean sessions whose connection ended leave once their messages are on their way
    await Promise.all(offline.filter(([, m]) => m.clean).map(([key, m]) => this.o.store.leave(key, m.clientId, m.node)))
  }

  /**
   * The members connected here, as the cluster should see them: a node whose heartbeat lapsed
   * (a long pause) had its members marked offline by another node's sweep; they come back here.
   */
  async reassert(): Promise<void> {
    const writes: Array<Promise<void>> = []
    for (const [clientId, here] of this.local) {
      if (this.host!.client(clientId) !== here.conn) continue
      for (const [key, qos] of here.groups) {
        const m = this.groups.get(key, clientId)
        if (m && m.online && m.node === this.o.nodeId) continue
        writes.push(this.o.store.rejoin(key, { clientId, node: this.o.nodeId, qos, online: true, clean: here.clean }))
      }
    }
    await Promise.all(writes)
  }

  summary(): Array<{ key: string; members: number; online: number } & GroupStats> {
    return this.groups.summary().map((g) => ({ ...g, ...this.stat(g.key) }))
  }

  membersOf(key: string): Member[] {
    return this.groups.members(key)
  }
}
