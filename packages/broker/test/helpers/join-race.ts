/**
 * A subscription that starts while a QoS 1 message is half way through the cluster: received and
 * matched (or its shared subscription member picked) on one node, its PUBACK not yet sent. The
 * window is made wide on purpose with the cluster bus' real pressure signal (cluster/bus.ts: a
 * node under pressure publishes `<origin>:1` on `culex:bus:pressure`, and every other node holds
 * its emit callbacks, hence its publishers' PUBACKs, until `<origin>:0` or 2 s without a refresh):
 * here the test plays an overloaded peer. Used by test/shared/share-join-order.test.ts and
 * test/cluster/suback-order.test.ts.
 */
import { Redis } from 'ioredis'
import { waitFor } from './wait.js'
import { rawClient, type AnyPacket, type Raw } from './raw-mqtt.js'

/** cluster/bus.ts `${channel}:pressure`, with the channel cluster/backend.ts gives the bus */
const PRESSURE_CHANNEL = 'culex:bus:pressure'

export class PeerPressure {
  private readonly redis: Redis
  private refresh: NodeJS.Timeout | undefined
  constructor(port: number) {
    this.redis = new Redis(port, '127.0.0.1')
  }
  /** on: every node holds its publishers' PUBACKs (refreshed well within the signal's 2 s life) */
  async set(on: boolean): Promise<void> {
    clearInterval(this.refresh)
    // the reply comes once Redis has pushed it to every node's control link
    await this.redis.publish(PRESSURE_CHANNEL, `test-peer:${on ? 1 : 0}`)
    if (on) this.refresh = setInterval(() => void this.redis.publish(PRESSURE_CHANNEL, 'test-peer:1').catch(() => {}), 400)
  }
  async close(): Promise<void> {
    clearInterval(this.refresh)
    this.redis.disconnect()
  }
}

/** one clock for every packet the clients of a test receive, in the order they are parsed */
let tick = 0

export interface Publisher {
  raw: Raw
  /** messages sent and not acknowledged yet */
  inflight: Map<number, string>
  /** called as each PUBACK is parsed */
  onPuback?: () => void
  /** payload -> tick its PUBACK arrived at */
  ackedAt: Map<string, number>
  publish(topic: string, payload: string): void
  acked(payloads: string[], what: string): Promise<void>
}

export async function publisher(port: number, clientId: string): Promise<Publisher> {
  const ackedAt = new Map<string, number>()
  const inflight = new Map<number, string>()
  let next = 0
  const { raw } = await rawClient(port, {
    clientId,
    onPacket: (p) => {
      if (p.cmd !== 'puback') return
      ackedAt.set(inflight.get(p.messageId as number)!, tick++)
      inflight.delete(p.messageId as number)
      pub.onPuback?.()
    },
  })
  const pub: Publisher = {
    raw,
    ackedAt,
    inflight,
    publish(topic, payload) {
      const messageId = (next++ % 60_000) + 1
      inflight.set(messageId, payload)
      raw.send({ cmd: 'publish', topic, payload, qos: 1, messageId })
    },
    acked: (payloads, what) => raw.until(() => payloads.every((p) => ackedAt.has(p)), 10_000, what),
  }
  return pub
}

export interface Subscriber {
  raw: Raw
  /** SUBSCRIBE packet id -> tick its SUBACK arrived at */
  subackAt: Map<number, number>
  /** UNSUBSCRIBE packet id -> tick its UNSUBACK arrived at */
  unsubackAt: Map<number, number>
  /** called as each SUBACK is parsed, before anything else sees it */
  onSuback?: (messageId: number) => void
  /** payloads received */
  got(): Set<string>
}

/** a client that acknowledges what it gets, and notes when its SUBACKs arrive */
export async function subscriber(port: number, clientId: string, clean = true): Promise<Subscriber> {
  const { raw } = await rawClient(port, {
    clientId,
    clean,
    autoAck: true,
    onPacket: (p: AnyPacket) => {
      if (p.cmd === 'unsuback') s.unsubackAt.set(p.messageId as number, tick++)
      if (p.cmd !== 'suback') return
      s.subackAt.set(p.messageId as number, tick++)
      s.onSuback?.(p.messageId as number)
    },
  })
  const s: Subscriber = { raw, subackAt: new Map(), unsubackAt: new Map(), got: () => new Set(raw.publishes().map((p) => String(p.payload))) }
  return s
}

/**
 * The race, once: `pre` is published under pressure and seen by `watcher` (matched, and a member
 * picked, on the watcher's node), then `member` subscribes with `filter`; the pressure goes once
 * the SUBACK is there (or after `holdMs`: a SUBACK that waits for the held PUBACK is the point);
 * then `posts` messages follow. Resolves with the messages whose PUBACK came after the SUBACK
 * and those of them the member never got.
 */
export async function joinDuringHeldPuback(o: {
  pressure: PeerPressure
  pub: Publisher
  watcher: { got(): Set<string> }
  member: Subscriber
  topic: string
  filter: string
  tag: string
  posts?: number
  holdMs?: number
  /** how long to wait for the messages acknowledged after the SUBACK at the member */
  settleMs?: number
}): Promise<{ late: string[]; missing: string[]; subackBeforePuback: boolean }> {
  const pre = `${o.tag}-pre`
  await o.pressure.set(true)
  o.pub.publish(o.topic, pre)
  await waitFor(() => o.watcher.got().has(pre), 10_000, `${pre} matched on the watcher's node`)
  const sid = o.member.subackAt.size + 1
  o.member.raw.send({ cmd: 'subscribe', messageId: sid, subscriptions: [{ topic: o.filter, qos: 1 }] })
  await o.member.raw.until(() => o.member.subackAt.has(sid), o.holdMs ?? 500, 'SUBACK under pressure').catch(() => {})
  const subackBeforePuback = o.member.subackAt.has(sid) && !o.pub.ackedAt.has(pre)
  await o.pressure.set(false)
  await o.member.raw.until(() => o.member.subackAt.has(sid), 10_000, 'SUBACK')
  const posts = Array.from({ length: o.posts ?? 5 }, (_, i) => `${o.tag}-post-${i}`)
  for (const p of posts) o.pub.publish(o.topic, p)
  await o.pub.acked([pre, ...posts], `PUBACKs of ${o.tag}`)
  const subackAt = o.member.subackAt.get(sid)!
  const late = [pre, ...posts].filter((p) => o.pub.ackedAt.get(p)! > subackAt)
  try {
    await waitFor(() => late.every((p) => o.member.got().has(p)), o.settleMs ?? 3000, `${o.tag}: every message acknowledged after the SUBACK at the member`)
  } catch {
    /* reported as missing */
  }
  return { late, missing: late.filter((p) => !o.member.got().has(p)), subackBeforePuback }
}
