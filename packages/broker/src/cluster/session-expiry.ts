/**
 * MQTT 5 session expiry across the cluster, kept in Redis instead of Aedes' in-process timers
 * (aedes#839: a node that dies forgets them, a client back on another node does not cancel them).
 *
 * - Each connection gets a token (`<node> <run>.<n>`). When Aedes registers the client, the
 *   token and the session's plan go into `culex:session-owner` (client id -> `<token> <plan>`)
 *   and `culex:node:<node>:sessions`, and any deadline of the session is cancelled: a CONNECT on
 *   any node keeps the session from expiring [MQTT-3.1.2-23].
 * - When the connection ends (seam: Aedes' scheduleSessionExpiry), if it still owns the session
 *   (no newer connection of the client id, here or on another node), the plan applies: 0 = the
 *   session ends now (MQTT 5 section 3.1.2.11.2); n > 0 = it expires n seconds later (its
 *   deadline goes into `culex:session-expiry`, a sorted set by client id); never = kept.
 * - An end is marked in Redis by the script that decides it (session-ending.ts), and a CONNECT
 *   of the client id, on any node, waits for it to finish (`settle`) [MQTT-4.1.0-2].
 * - A node that dies (kill -9: no disconnect at all) leaves its owner entries: the will sweeper
 *   (cluster/wills.ts, one node under a Redis lock) adopts them once the node's registration
 *   lapsed, with deadlines counted from the lapse, and a restarted node adopts its own at start.
 * - The same sweeper ends the sessions whose deadline passed (`expire`), unless a connection
 *   owns the session again. A node taken for dead while alive (it missed heartbeats: a long
 *   pause) takes its clients' sessions back when it beats again (`reassert`).
 * Plans: MQTT 5 clients, their Session Expiry Interval (clamped to session_expiry_max_s by Aedes,
 * and as changed by DISCONNECT, section 3.14.2.2.2; 0xFFFFFFFF = never, MQTT 5 section 3.1.2.11.2). MQTT
 * 3.1.1 clients keep today's behaviour: a persistent session never expires, a clean one is
 * cleaned by Aedes at the next CONNECT (plan "never", nothing to do).
 * The Redis scripts that decide each step: session-expiry-lua.ts.
 */
import { randomBytes } from 'node:crypto'
import type { Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import type { CulexRedisPersistence } from './persistence.js'
import { SESSIONS_KEY, SESSION_DEADLINES_KEY, SESSION_ENDING_KEY, SESSION_OWNER_KEY, nodeSessionsKey } from './keys.js'
import { closeConnectionAfter } from '../seam/index.js'
import { redisWarnings } from '../ops/redis-refusals.js'
import { claimTurnAndSettle } from './session-claim.js'
import { ended, settle, staleEnds, takeStale } from './session-ending.js'
import { ADOPT_LUA, EXPIRE_LUA, MARK_LUA, REASSERT_LUA, RELEASE_LUA } from './session-expiry-lua.js'

/** 0xFFFFFFFF: the session does not expire */
export const NEVER = 0xffffffff
/** the plan of a session that is kept (no deadline) */
const KEEP = -1

const BATCH = 100
/** longest a DISCONNECT's close waits for its session end to be marked (Redis slow or away) */
const MARK_WAIT_MS = 1000

/** the plan of a client's session when its connection ends: seconds until it expires, 0 = ends now, KEEP */
export function planOf(client: Client): number {
  if (client.version !== 5) return KEEP
  const s = client.sessionExpiryInterval
  return s >= NEVER ? KEEP : s
}

export class SessionExpiry {
  private readonly run = randomBytes(4).toString('hex')
  private seq = 0
  private readonly tokens = new WeakMap<Client, string>()
  /** the end marks issued, by connection (one each) */
  private readonly marks = new WeakMap<Client, Promise<unknown>>()
  /** sessions expired and ended here, for tests and logs */
  readonly stats = { expired: 0 }
  private readonly endedListeners: Array<(clientId: string) => void> = []
  /** at most one line per Redis error per 10 s: a Redis at maxmemory refuses it for every CONNECT */
  private readonly ownerNotStored: (client: string, err: Error) => void

  constructor(
    private readonly db: Redis,
    private readonly core: CulexRedisPersistence,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    this.ownerNotStored = redisWarnings(log, 'session owner not stored')
  }

  /**
   * Aedes registered the client (before its CONNACK): it owns its session, any deadline is
   * cancelled. A session that ends with this connection (Session Expiry 0) has its end marked
   * before any close by the server (closeGuard).
   */
  connected(client: Client): void {
    const token = this.newToken()
    this.tokens.set(client, token)
    const id = client.id
    this.db
      .multi()
      .hset(SESSION_OWNER_KEY, id, `${token} ${planOf(client)}`)
      .hset(nodeSessionsKey(this.nodeId), id, token)
      .zrem(SESSION_DEADLINES_KEY, id)
      .exec()
      .catch((err: Error) => this.ownerNotStored(id, err))
    if (planOf(client) === 0) this.closeGuard(client)
  }

  /**
   * A DISCONNECT of `client` ends its session (broker/conformance-session.ts disconnecting): the
   * end is marked now, before Aedes handles the packet (and before a DISCONNECT 0x82 of a
   * protocol error is written), and the connection closed once the mark is stored.
   */
  ending(client: Client): void {
    this.mark(client)
    this.closeGuard(client)
  }

  /**
   * Every close of `client`'s connection by this server (a DISCONNECT, keepalive, a limit, a
   * protocol error, a malformed packet, a server DISCONNECT) waits until the end of its session,
   * if the close ends it, is marked in Redis (at most MARK_WAIT_MS: Redis slow or away), so a
   * CONNECT of the client once it saw the close waits for the end on any node [MQTT-4.1.0-2].
   * Redis may serve another node's command that arrived at about the same time first: hence the
   * wait for the mark to be stored, not only sent. Once per connection, nothing per message.
   */
  private closeGuard(client: Client): void {
    closeConnectionAfter(client, () => (planOf(client) === 0 ? this.mark(client) : undefined), MARK_WAIT_MS)
  }

  /** the end of `client`'s session marked in Redis if the connection still owns it (once per connection) */
  private mark(client: Client): Promise<unknown> | undefined {
    const token = this.tokens.get(client)
    if (!token || !client.id) return undefined
    let marked = this.marks.get(client)
    if (!marked) {
      marked = this.db
        .eval(MARK_LUA, 2, SESSION_OWNER_KEY, SESSION_ENDING_KEY, client.id, token)
        .catch((err: Error) => this.log.warn({ client: client.id, err: err.message }, 'session end not marked'))
      this.marks.set(client, marked)
    }
    return marked
  }

  /**
   * Whether `client`'s connection still owns its session: the last connection of the client id
   * registered on any node does [MQTT-3.1.4-3] (another node's takeover notice closes it only if not)
   */
  async owns(client: Client): Promise<boolean> {
    const token = this.tokens.get(client)
    if (!token || !client.id) return false
    const owner = await this.db.hget(SESSION_OWNER_KEY, client.id)
    return owner !== null && owner.startsWith(`${token} `)
  }

  /** the connection ended (seam: Aedes' scheduleSessionExpiry): its session is kept, ended or given its deadline */
  async released(client: Client): Promise<void> {
    const token = this.tokens.get(client)
    if (!token || !client.id) return
    const id = client.id
    try {
      const plan = planOf(client)
      const r = await this.db.eval(RELEASE_LUA, 4, SESSION_OWNER_KEY, nodeSessionsKey(this.nodeId), SESSION_DEADLINES_KEY, SESSION_ENDING_KEY, id, token, plan)
      if (r === 'end') await this.end(id, token)
      else if (r === 'expiring') this.log.debug({ client: id, expiry_s: plan }, 'session expires unless the client returns')
    } catch (err) {
      this.log.warn({ client: id, err: (err as Error).message }, 'session expiry not stored')
    }
  }

  /** `fn` is called with the client id of each session ended here (its `$share` memberships go: main.ts) */
  onEnded(fn: (clientId: string) => void): void {
    this.endedListeners.push(fn)
  }

  /**
   * Before a CONNECT of `id` is answered (its preConnect step): wait for an end of its session in
   * progress on any node [MQTT-4.1.0-2], finishing one a dead node left, then whether the id has
   * a session (for Session Present [MQTT-3.2.2-2]).
   */
  settle(id: string): Promise<boolean> {
    return settle(this.db, id, (stale) => this.finishStale(stale))
  }

  /** before a CONNECT of `id` is answered (its preConnect step): its turn (cluster/session-claim.ts) [MQTT-3.1.4-3], then as `settle` */
  claimAndSettle(client: Client, id: string): Promise<boolean> {
    return claimTurnAndSettle(this.db, client, id, this.newToken(), this.log, (stale) => this.finishStale(stale))
  }

  /** finish an end another node left unfinished (it died between the decision and the deletions) */
  private async finishStale(id: string): Promise<boolean> {
    const token = this.newToken()
    if (!(await takeStale(this.db, id, token))) return false
    this.log.warn({ client: id }, 'finishing a session end another node left unfinished')
    await this.end(id, token)
    return true
  }

  private newToken(): string {
    return `${this.nodeId} ${this.run}.${++this.seq}`
  }

  /** the session is over (marked as ending by `token`): its state and its Session Present mark go, then the marker */
  private async end(id: string, token: string): Promise<void> {
    await this.core.endSession(id)
    await this.db.srem(SESSIONS_KEY, id)
    await ended(this.db, id, token)
    for (const fn of this.endedListeners) fn(id)
  }

  /**
   * The sessions a dead node (or a previous run of this node) still owned: they expire counted
   * from `diedAt` (ms, Redis clock). Returns client id -> plan (seconds; 0 = ended; KEEP).
   */
  async adoptNode(nodeId: string, diedAt: number): Promise<Map<string, number>> {
    const flat = (await this.db.eval(ADOPT_LUA, 3, SESSION_OWNER_KEY, nodeSessionsKey(nodeId), SESSION_DEADLINES_KEY, diedAt)) as string[]
    const plans = new Map<string, number>()
    for (let i = 0; i < flat.length; i += 2) plans.set(flat[i]!, Number(flat[i + 1]))
    if (plans.size > 0) this.log.info({ dead_node: nodeId, sessions: plans.size }, 'sessions of a dead node adopted')
    return plans
  }

  /**
   * This node was taken for dead while alive (missed heartbeats, cluster/registry.ts onRejoin):
   * the sweeper adopted its sessions. Its connected clients own theirs again, unless a newer
   * connection took one meanwhile.
   */
  async reassert(clients: Iterable<Client>): Promise<void> {
    const p = this.db.pipeline()
    let n = 0
    for (const client of clients) {
      const token = this.tokens.get(client)
      if (!token || !client.id) continue
      p.eval(REASSERT_LUA, 3, SESSION_OWNER_KEY, nodeSessionsKey(this.nodeId), SESSION_DEADLINES_KEY, client.id, token, planOf(client))
      n++
    }
    if (n > 0) await p.exec()
  }

  /** end every session whose deadline passed (the sweeper, under its lock); never throws */
  async expire(): Promise<void> {
    try {
      for (;;) {
        const token = this.newToken()
        const ids = (await this.db.eval(EXPIRE_LUA, 3, SESSION_DEADLINES_KEY, SESSION_OWNER_KEY, SESSION_ENDING_KEY, BATCH, token)) as string[]
        for (const id of ids) {
          await this.end(id, token)
          this.stats.expired++
          this.log.info({ client: id }, 'session expired')
        }
        if (ids.length < BATCH) break
      }
      // ends a node left unfinished (it died between the decision and the deletions)
      for (const id of await staleEnds(this.db)) await this.finishStale(id)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'session expiry sweep failed')
    }
  }
}
