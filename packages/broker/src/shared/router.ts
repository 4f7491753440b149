/**
 * Shared subscriptions: the membership side of the router, on the member's node (joins, leaves,
 * ends of connections, the group queue's drain, the sweep of dead nodes' members); the delivery
 * side, and how a message finds its member, is delivery.ts. No Aedes internals here.
 */
import type { Member } from './groups.js'
import { recordKey } from './store.js'
import { ShareDelivery } from './delivery.js'
import type { GroupStats } from './packets.js'

export { REDISPATCH_TOPIC, fieldOfDelivery, type MemberPacket, type SharePacket, type ShareChoice, type ShareHost, type GroupStats, type RouterOptions } from './packets.js'

const DRAIN_PAGE = 200

export class ShareRouter extends ShareDelivery {
  // ---- membership, from the member's node ----------------------------------------------------

  /** a client subscribed to a group (or its persistent session was restored) on this node */
  async join(conn: object, clientId: string, clean: boolean, key: string, qos: number): Promise<void> {
    let here = this.local.get(clientId)
    if (!here || here.conn !== conn) {
      // what an earlier connection of this client left unacknowledged (its node died, or it
      // reconnected before the sweep) goes to the others now, before this one is picked again;
      // a restored session joins all its groups at once: they all wait for it. QoS 2 deliveries
      // being put into the session by an earlier connection here are the session's: not sent on
      const before = here?.conn
      const ready = (before ? this.handedOff(before) : Promise.resolve()).then(() => this.takeAndRedispatch(clientId))
      this.local.set(clientId, (here = { conn, groups: new Map(), clean, ready }))
    }
    await here.ready
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

  /**
   * cleanStart would do nothing: no group in this node's view (so the client is in none) and a
   * store that knows at once it holds no record for anyone (one node). Asked synchronously on every
   * CONNECT (share-aedes.ts), so that a node without shared subscriptions makes no promise for them.
   */
  cleanStartIsNoop(): boolean {
    return this.groups.size === 0 && this.o.store.holdsNone?.() === true
  }

  /** ended(conn, clientId) would do nothing: `conn` is not the member connection of `clientId` here */
  isMemberConnection(conn: object, clientId: string): boolean {
    return this.local.get(clientId)?.conn === conn
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
   * members (QoS 1 ones, and QoS 2 ones not yet sent to it: those sent are its session's
   * [MQTT-4.8.2-4] [MQTT-4.8.2-5], delivery.ts), then a clean session leaves its groups. A node that is stopping leaves the records
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
    // a QoS 2 delivery being put into the session is the session's: its record must not go on below
    await this.handedOff(conn)
    // the client is connected to another node already: what is held now may be that connection's;
    // this one's leftovers go when that one ends (or at its next start, join)
    const moved = keys.some((key) => {
      const m = this.groups.get(key, clientId)
      return m !== undefined && m.online && m.node !== this.o.nodeId
    })
    if (!moved) await this.takeAndRedispatch(clientId)
    if (here.clean) await Promise.all(keys.map((key) => this.o.store.leave(key, clientId, this.o.nodeId)))
  }

  /**
   * The client's session ended while it was away (MQTT 5 session expiry, cluster/session-expiry.ts):
   * it leaves every group it is an offline member of (its subscriptions are gone with the session),
   * so none keeps queueing for it, and what is still held for it goes to other members. A member
   * online somewhere (a connection took the session meanwhile) is left alone.
   */
  async sessionEnded(clientId: string): Promise<void> {
    if (this.local.has(clientId)) return
    const leaving: Array<Promise<void>> = []
    for (const key of this.groups.keys()) {
      const m = this.groups.get(key, clientId)
      if (m && !m.online) leaving.push(this.o.store.leave(key, clientId, m.node))
    }
    if (leaving.length === 0) return
    await Promise.all(leaving)
    await this.takeAndRedispatch(clientId)
  }

  /** a member is connected here and subscribed: it drains its groups' queues */
  async drainFor(clientId: string): Promise<void> {
    const here = this.local.get(clientId)
    if (!here) return
    for (const [key, qos] of here.groups) {
      for (;;) {
        const recs = await this.o.store.drain(key, clientId, DRAIN_PAGE)
        if (recs.length === 0) break
        for (const rec of recs) {
          await this.o.store.hold(clientId, recordKey(rec), rec)
          if (this.expired(rec, clientId)) continue
          if (this.host!.client(clientId) === here.conn) this.send({ clientId, conn: here.conn, clean: here.clean }, rec, qos, () => {})
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
    const holding = new Set(await this.o.store.holding([...new Set(offline.map(([, m]) => m.clientId))]))
    for (const c of holding) await this.takeAndRedispatch(c)
    // clean sessions whose connection ended leave once two sweeps in a row found nothing held for
    // them: a node that picked one before it heard it went offline may still be writing a record
    // for it (the records leave with the bus batch, at the end of a loop turn at the latest:
    // redis-store.ts hold), and only the sweep (which sees members, not records) can send that on.
    // The sweep before this one was a sweep interval ago, far longer than a loop turn
    const quiet = offline.filter(([, m]) => m.clean && !holding.has(m.clientId))
    const id = ([key, m]: [string, Member]): string => `${m.node}\n${m.clientId}\n${key}`
    const before = this.quietLastSweep
    this.quietLastSweep = new Set(quiet.map(id))
    await Promise.all(quiet.filter((km) => before.has(id(km))).map(([key, m]) => this.o.store.leave(key, m.clientId, m.node)))
  }

  /** the clean offline members the last sweep found nothing held for (sweepDead) */
  private quietLastSweep = new Set<string>()

  /**
   * The members connected here, as the cluster should see them: a node whose heartbeat lapsed
   * (a long pause) had its members marked offline by another node's sweep; they come back here.
   * `acknowledged`: each written as a SUBSCRIBE's join is, resolved once every other node applied
   * it (at most the join's ack timeout): after Redis lost its data this node is ready only then,
   * so no node picks nobody for a message to the group meanwhile and acknowledges it, dropped.
   */
  async reassert(acknowledged = false): Promise<void> {
    const writes: Array<Promise<void>> = []
    for (const [clientId, here] of this.local) {
      if (this.host!.client(clientId) !== here.conn) continue
      for (const [key, qos] of here.groups) {
        const m = this.groups.get(key, clientId)
        if (m && m.online && m.node === this.o.nodeId) continue
        const member = { clientId, node: this.o.nodeId, qos, online: true, clean: here.clean }
        writes.push(acknowledged ? this.o.store.join(key, member) : this.o.store.rejoin(key, member))
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
