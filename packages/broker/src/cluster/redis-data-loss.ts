/**
 * A Redis that comes back without its data: restarted without AOF (or RDB), a replica promoted
 * empty, a FLUSHALL during an outage. Until this, the nodes re-synced from the empty Redis and
 * went on: a client still connected with a persistent session kept its subscriptions in the
 * node's memory only, so once it went away nothing was queued for it (a QoS 1 message
 * acknowledged to its publisher and lost), it was told Session Present 0 on return, and a will
 * its node would leave for the sweeper if it died was gone.
 *
 * Detection: `culex:epoch` holds a random value, made by the first node that finds none (at
 * start, or after the links were down). A node remembers the one it saw; after a Redis outage a
 * value it does not know (or none) means Redis lost its data meanwhile. A Redis that kept its
 * data (AOF, a replica that had it) keeps the key: nothing happens.
 *
 * Restore, by every node for its own connected clients, before it is ready again: the session
 * owner entries (cluster/session-expiry.ts `reassert`), the Session Present marks and the
 * subscriptions of the persistent sessions (through the persistence, so every other node's trie
 * gets them, as a SUBSCRIBE does), and the wills; then the hooks the node registered
 * (`onDataLost`: main.ts puts its shared subscriptions' members back in their groups). What no
 * node holds is gone and is said so in the warning: retained messages, the queues of sessions that
 * were offline, the messages in flight.
 */
import { randomBytes } from 'node:crypto'
import type { Aedes, Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import type { CulexRedisPersistence } from './persistence.js'
import type { SessionExpiry } from './session-expiry.js'
import type { StoredSub } from './subscription-sync.js'
import { SESSIONS_KEY } from './keys.js'
import { clientsOf, connectedWill, grantedSubscriptions } from '../seam/index.js'

export const EPOCH_KEY = 'culex:epoch'
/** clients restored at once */
const CHUNK = 100

export class DataEpoch {
  private seen: string | null = null
  private found: string | null = null

  constructor(private readonly db: Redis) {}

  /** the epoch Redis holds, made if there is none (a read only, the usual case: works under maxmemory too) */
  private async current(): Promise<string | null> {
    const held = await this.db.get(EPOCH_KEY)
    if (held !== null) return held
    await this.db.set(EPOCH_KEY, randomBytes(8).toString('hex'), 'NX')
    return this.db.get(EPOCH_KEY)
  }

  /** at start: the epoch of the data Redis holds (made if there is none) */
  async start(): Promise<void> {
    this.seen = await this.current()
  }

  /** after the links were down: whether Redis lost its data meanwhile (until `restored`, asked again it says so again) */
  async lost(): Promise<boolean> {
    this.found = await this.current()
    return this.seen !== null && this.found !== this.seen
  }

  /** what `lost` found is dealt with: the new epoch is the one this node knows */
  restored(): void {
    if (this.found !== null) this.seen = this.found
  }
}

/** a client's subscriptions as the persistence stores them (what Aedes' SUBSCRIBE hands it) */
export function storedSubscriptions(client: Client): StoredSub[] {
  const out: StoredSub[] = []
  for (const [topic, g] of Object.entries(grantedSubscriptions(client))) {
    const sub: StoredSub & { subscriptionIdentifier?: number } = { topic, qos: g.qos }
    if (g.rh !== undefined) sub.rh = g.rh
    if (g.rap !== undefined) sub.rap = g.rap
    if (g.nl !== undefined) sub.nl = g.nl
    if (g.si !== undefined) sub.subscriptionIdentifier = g.si
    out.push(sub)
  }
  return out
}

export interface Restored {
  clients: number
  sessions: number
  subscriptions: number
  wills: number
}

/** write this node's connected clients' session state into a Redis that lost it */
export async function restoreConnected(opts: { broker: Aedes; db: Redis; core: CulexRedisPersistence; sessions: SessionExpiry; log: Logger }): Promise<Restored> {
  const { broker, db, core, sessions, log } = opts
  const clients = Object.values(clientsOf(broker)).filter((c) => !c.closed && c.id)
  const counts: Restored = { clients: clients.length, sessions: 0, subscriptions: 0, wills: 0 }
  await sessions.reassert(clients)
  for (let i = 0; i < clients.length; i += CHUNK) {
    await Promise.all(
      clients.slice(i, i + CHUNK).map(async (client) => {
        const will = connectedWill(client)
        if (will) {
          await core.putWill(client, will)
          counts.wills++
        }
        if (client.clean !== false) return
        await db.sadd(SESSIONS_KEY, client.id)
        counts.sessions++
        const subs = storedSubscriptions(client)
        if (subs.length === 0) return
        await core.addSubscriptions(client, subs)
        counts.subscriptions += subs.length
      }),
    )
  }
  log.warn(
    { restored_clients: counts.clients, restored_sessions: counts.sessions, restored_subscriptions: counts.subscriptions, restored_wills: counts.wills },
    'redis came back without its data (no AOF?): the sessions, subscriptions and wills of the clients connected here were written again; retained messages and the queues of offline sessions are gone',
  )
  return counts
}
