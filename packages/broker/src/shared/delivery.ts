/**
 * Shared subscriptions across the cluster: who gets each message, and what happens to it when
 * its member goes away (the membership side is router.ts). No Aedes internals here.
 *
 * - The node that receives a PUBLISH picks one online member per matching group from its
 *   in-memory membership (no Redis round trip) and writes the choice into the message
 *   (`share`: [group key, member, member's node] per group), which the cluster bus carries to
 *   every node (bus-codec.ts), so nodes never disagree. For QoS 1/2 it first records the message
 *   as in flight to that member (store.ts), so the PUBACK to the publisher never leaves before
 *   the message is safe from the member's node dying.
 * - The member's node delivers it at the member's QoS; the member's PUBACK/PUBCOMP releases it.
 *   A QoS 2 delivery is the member's for good [MQTT-4.8.2-4] [MQTT-4.8.2-5]: to a member whose
 *   session outlives its connection it goes into that session (handOff), to one whose session
 *   ends with its connection it is released as it is written (share-aedes.ts); either way it is
 *   never sent to another member once it went out (QoS 1 ones may be, §4.8.2, and are).
 * - A member gone between the choice and the delivery, a member whose connection ends with
 *   messages unacknowledged, and the members of a dead node (sweepDead, one node at a time):
 *   whoever takes the records out of the store sends them to another online member
 *   ("redispatch", a share-only message on the bus, REDISPATCH_TOPIC), or, when only offline
 *   persistent members are left, to the group queue, which the next member to come back drains.
 */
import { ShareGroups } from './groups.js'
import { recordKey, type MemberChange, type ShareRecord } from './store.js'
import { DELIVERY_PREFIX, REDISPATCH_TOPIC, SESSION_PREFIX, type GroupStats, type MemberPacket, type RouterOptions, type ShareChoice, type ShareHost, type SharePacket } from './packets.js'

/** the member a delivery goes to: its client id, connection, and whether its session ends with that connection */
export interface MemberConn {
  clientId: string
  conn: object
  clean: boolean
}

export class ShareDelivery {
  readonly groups = new ShareGroups()
  readonly stats = new Map<string, GroupStats>()
  protected host?: ShareHost
  /** members connected here: client id -> the connection and its groups (key -> QoS) */
  protected readonly local = new Map<string, { conn: object; groups: Map<string, number>; clean: boolean; ready?: Promise<void> }>()
  protected live: (node: string) => boolean = () => true

  /** group -> origin -> the brokerId of its deliveries (deliveryId) */
  private readonly deliveryIds = new Map<string, Map<string, string>>()

  /** per connection: QoS 2 deliveries being put into the member's session (ended() waits for them) */
  private readonly handoffs = new WeakMap<object, Set<Promise<void>>>()

  private activeListener?: (on: boolean) => void
  private wasActive = false

  /** the changes heard while each reload's load is under way, applied again on what it loaded */
  private readonly journals = new Set<MemberChange[]>()

  constructor(protected readonly o: RouterOptions) {
    o.store.onChange((c) => {
      for (const j of this.journals) j.push(c)
      this.apply(c)
      this.checkActive()
    })
  }

  private apply(c: MemberChange): void {
    if (c.member) this.groups.set(c.key, c.member)
    else this.groups.remove(c.key, c.clientId)
  }

  /**
   * `fn(true)` when the first group appears in this node's view, `fn(false)` when the last one is
   * gone (share-aedes.ts hooks into the message path only meanwhile). Called synchronously with
   * the change: a local join reports it before it is written to the store's other nodes.
   */
  onActive(fn: (on: boolean) => void): void {
    this.activeListener = fn
    this.wasActive = this.groups.size > 0
    fn(this.wasActive)
  }

  private checkActive(): void {
    const on = this.groups.size > 0
    if (on === this.wasActive) return
    this.wasActive = on
    this.activeListener?.(on)
  }

  async start(host: ShareHost): Promise<void> {
    this.host = host
    // a join is acknowledged (and its SUBACK sent) only after the messages picked without it (store.ts)
    this.o.store.setBarrier(() => host.barrier())
    await this.reload()
  }

  /** the membership from the store (start, Redis links back) */
  async reload(): Promise<void> {
    // a join or leave heard while the load is under way may be missing from what it read (Redis
    // answered the load first): applied again on it (each change sets or removes one member)
    const journal: MemberChange[] = []
    this.journals.add(journal)
    try {
      this.groups.reset(await this.o.store.load())
      for (const c of journal) this.apply(c)
    } finally {
      this.journals.delete(journal)
    }
    this.checkActive()
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
    if (this.groups.size === 0 || p.share !== undefined || (p.cmd !== undefined && p.cmd !== 'publish')) return undefined
    const keys = this.groups.match(p.topic)
    if (keys.length === 0) return undefined
    const choices: ShareChoice[] = []
    let waits: Array<Promise<unknown>> | undefined
    const ctx = { node: this.o.nodeId, topic: p.topic, publisher: p.clientId, random: Math.random }
    for (const key of keys) {
      const st = this.stat(key)
      st.messages++
      const m = this.groups.pick(key, this.o.strategy, ctx, this.live)
      const rec = p.qos > 0 ? this.recordOf(p, key) : undefined
      if (m) {
        choices.push([key, m.clientId, m.node])
        if (rec) (waits ??= []).push(this.o.store.hold(m.clientId, recordKey(rec), rec))
      } else if (rec && this.groups.hasOfflinePersistent(key)) {
        ;(waits ??= []).push(this.o.store.enqueue(key, rec, this.o.queueLimit).then((n) => (st.dropped += n)))
      } else st.dropped++
    }
    if (choices.length > 0) p.share = choices
    return waits && Promise.all(waits)
  }

  protected recordOf(p: SharePacket, key: string): ShareRecord {
    const rec: ShareRecord = { g: key, t: p.shareTopic ?? p.topic, p: p.payload, q: p.qos, b: String(p.brokerId ?? this.o.nodeId), c: Number(p.brokerCounter ?? 0) }
    if (p.clientId !== undefined) rec.pub = p.clientId
    if (p.properties !== undefined) rec.x = p.properties
    if (p.messageExpiry !== undefined) rec.e = p.messageExpiry
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
      if (this.expired(rec, clientId)) continue
      if (here && qos !== undefined && conn === here.conn) {
        pending++
        this.send({ clientId, conn, clean: here.clean }, rec, qos, done)
      } else this.gone(rec, clientId)
    }
    done()
  }

  protected send(to: MemberConn, rec: ShareRecord, qos: number, cb: () => void): void {
    let properties = rec.x
    // the interval left, not the one published [MQTT-3.3.2-6] (expired ones: see expired())
    if (rec.e !== undefined) properties = { ...properties, messageExpiryInterval: Math.max(1, Math.ceil((rec.e - Date.now()) / 1000)) }
    const packet: MemberPacket = {
      cmd: 'publish',
      topic: rec.t,
      payload: rec.p,
      qos: Math.min(rec.q, qos),
      retain: false, // [MQTT-3.3.1-9]: a live message for an established subscription
      dup: false,
      brokerId: this.deliveryId(rec.g, rec.b),
      brokerCounter: rec.c,
      ...(rec.pub !== undefined ? { clientId: rec.pub } : {}),
      ...(properties !== undefined ? { properties } : {}),
    }
    if (packet.qos === 2 && !to.clean) return this.handOff(to, rec, packet, cb)
    this.host!.deliver(to.conn, packet, cb, rec.g)
  }

  /**
   * The brokerId of a group's deliveries of one origin's messages (Aedes dedupes per brokerId:
   * client.duplicates): the same string each time, not one built per delivery, so the lookup
   * hashes a string whose hash is kept. Bounded: origins change with every node start.
   */
  private deliveryId(group: string, origin: string): string {
    let byOrigin = this.deliveryIds.get(group)
    if (!byOrigin) {
      if (this.deliveryIds.size >= 10_000) this.deliveryIds.clear()
      this.deliveryIds.set(group, (byOrigin = new Map()))
    }
    let id = byOrigin.get(origin)
    if (id === undefined) {
      if (byOrigin.size >= 1000) byOrigin.clear()
      byOrigin.set(origin, (id = `${DELIVERY_PREFIX}${group}|${origin}`))
    }
    return id
  }

  /**
   * [MQTT-4.8.2-4] A QoS 2 message sent to a member whose session outlives its connection is that
   * session's: it is put into the member's session store (memory or Redis, as the session's other
   * messages) before it is written, and only then is its in-flight record released, so the end of
   * the connection sends it to nobody else; the member gets it again when it reconnects, on any
   * node (DUP 1, same packet id), or its PUBREL once it sent PUBREC. [MQTT-4.8.2-5] If the session
   * ends first, the message goes with it. Should the session store refuse it, it is delivered as
   * before (its record goes to another member if the connection ends unacknowledged).
   */
  private handOff(to: MemberConn, rec: ShareRecord, packet: MemberPacket, cb: () => void): void {
    const fail = (what: string) => (err: Error) => this.o.log.warn({ err: err.message, group: rec.g, client: to.clientId }, `shared subscription: ${what}`)
    packet.brokerId = `${SESSION_PREFIX}${rec.g}|${rec.b}`
    // the session's replay drops it past its expiry if it was never written [MQTT-3.3.2-5]
    if (rec.e !== undefined) packet.messageExpiry = rec.e
    const step = this.host!.keep(to.conn, packet, rec.g).then(
      () => this.o.store.release(to.clientId, recordKey(rec)).then(() => {}, fail('release after the hand-off to the session failed')),
      (err: Error) => {
        fail('QoS 2 delivery not kept in the session')(err)
        packet.brokerId = `${DELIVERY_PREFIX}${rec.g}|${rec.b}`
        delete packet.messageExpiry
      },
    )
    let pending = this.handoffs.get(to.conn)
    if (!pending) this.handoffs.set(to.conn, (pending = new Set()))
    pending.add(step)
    void step.then(() => {
      pending.delete(step)
      this.host!.deliver(to.conn, packet, cb, rec.g)
    })
  }

  /** the hand-offs to the session under way on a connection have settled */
  protected async handedOff(conn: object): Promise<void> {
    const pending = this.handoffs.get(conn)
    if (pending) await Promise.all(pending)
  }

  /** its message expiry interval passed while it waited (group queue, a member gone): released, not sent [MQTT-3.3.2-5] */
  protected expired(rec: ShareRecord, clientId: string): boolean {
    if (rec.e === undefined || rec.e > Date.now()) return false
    if (rec.q > 0) this.acked(clientId, recordKey(rec))
    return true
  }

  /** the picked member is not (or no longer) here: the message goes to another one */
  protected gone(rec: ShareRecord, clientId: string): void {
    // a stopping node's emitter is closing: the record stays for another node's sweep
    if (this.host!.stopping()) return
    if (rec.q === 0) return this.redispatch(rec, clientId)
    // whoever removes the record sends it on; nobody else can
    this.o.store.release(clientId, recordKey(rec)).then(
      (had) => had && this.redispatch(rec, clientId),
      (err: Error) => this.o.log.warn({ err: err.message, group: rec.g }, 'shared subscription: release failed'),
    )
  }

  protected redispatch(rec: ShareRecord, exclude: string): void {
    const st = this.stat(rec.g)
    st.redispatched++
    const m = this.groups.pick(rec.g, this.o.strategy, { node: this.o.nodeId, topic: rec.t, publisher: rec.pub, random: Math.random }, this.live, exclude)
    const fail = (err: Error): void => this.o.log.warn({ err: err.message, group: rec.g }, 'shared subscription: redispatch failed')
    if (m) {
      // held first: Redis runs it before the bus batch that carries the message (redis-store.ts)
      if (rec.q > 0) this.o.store.hold(m.clientId, recordKey(rec), rec).catch(fail)
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
        ...(rec.x !== undefined ? { properties: rec.x } : {}),
        ...(rec.e !== undefined ? { messageExpiry: rec.e } : {}),
        share: [[rec.g, m.clientId, m.node]],
      })
    } else if (rec.q > 0 && this.groups.hasOfflinePersistent(rec.g)) {
      this.o.store.enqueue(rec.g, rec, this.o.queueLimit).then((n) => (st.dropped += n), fail)
    } else st.dropped++
  }

  protected markOffline(key: string, clientId: string, node: string): void {
    const m = this.groups.get(key, clientId)
    if (m && m.online && m.node === node) this.groups.set(key, { ...m, online: false })
  }

  protected async takeAndRedispatch(clientId: string): Promise<void> {
    for (const rec of await this.o.store.takeAll(clientId)) this.redispatch(rec, clientId)
  }

  /** the member acknowledged a share delivery (PUBACK, PUBCOMP) */
  acked(clientId: string, field: string): void {
    this.o.store.release(clientId, field).catch(() => {})
  }

}
