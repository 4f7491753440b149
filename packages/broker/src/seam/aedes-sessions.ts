/**
 * The MQTT 5 session-expiry and will-delay timers of Aedes 2 (aedes 2.0.0-beta.1). Contract row
 * A17 in test/seam/contract-sessions.test.ts.
 *
 * lib/client.js close calls `broker.scheduleWill(client, will, delayS)` for a will with a Will
 * Delay Interval (delay = min(will delay, session expiry), MQTT 5 section 3.1.3.2.2) and then
 * `broker.scheduleSessionExpiry(client)` once the client is unregistered. The stock methods
 * (aedes.js) arm timers in the process (aedes#839): a node that dies forgets them, and a client
 * that comes back on another node does not cancel them. A cluster replaces both with its own,
 * kept in Redis (cluster/session-expiry.ts, cluster/wills.ts).
 */
import type { Aedes, Client } from 'aedes'
import { wrapNewClientsListener } from './aedes-new-clients.js'

/** what a cluster does instead of Aedes' in-process timers */
export interface SessionTimers {
  /** the client's connection ended: its session is kept, ended or expiring per client.sessionExpiryInterval (and version) */
  sessionEnded(client: Client): void
  /** the client's will is due in `delayS` seconds unless the client returns first */
  willDelayed(client: Client, will: unknown, delayS: number): void
}

interface BrokerTimers {
  scheduleSessionExpiry(client: Client): void
  scheduleWill(client: Client, will: unknown, delaySeconds: number): void
  /** client ids whose session a new connection is taking over (aedes.js registerClient) */
  _takingOver: Set<string>
}

/**
 * Replace `broker.scheduleSessionExpiry` and `broker.scheduleWill` (aedes.js; looked up at call time
 * on the broker by lib/client.js close). The stock takeover guard is kept: while a new connection
 * of the same client id takes over (`broker._takingOver`), the old connection's close neither ends
 * nor schedules anything (the new connection owns the session and cancels the will).
 */
export function replaceSessionTimers(broker: Aedes, timers: SessionTimers): void {
  const b = broker as unknown as BrokerTimers
  b.scheduleSessionExpiry = (client) => {
    if (client.id && b._takingOver.has(client.id)) return
    timers.sessionEnded(client)
  }
  b.scheduleWill = (client, will, delaySeconds) => {
    if (client.id && b._takingOver.has(client.id)) return
    timers.willDelayed(client, will, delaySeconds)
  }
}


/** the connections whose destroys wait (closeConnectionAfter): one gate each */
const gated = new WeakSet<object>()

/**
 * Row A19: every close of a connection made by the server goes through `client.conn.destroy`
 * (aedes 2.0.0-beta.1: the DISCONNECT handler, lib/handlers/index.js, before the close steps;
 * lib/client.js `_onError` (keepalive timeout, parse and write errors, a packet a hook refused),
 * before `close()`; `close()` itself at the end of its steps (a server DISCONNECT through
 * `client.disconnect`: takeover 0x8E, packet too large 0x95, ...); the drain timeout; and
 * Culex's own closes: limits, faults, broker/disconnect.ts; and on a half-open socket,
 * listeners/tcp.ts keepHalfOpen, the peer's FIN: Aedes' 'end' listener calls `close()`, which
 * destroys at its end). Here the first destroy of the
 * client's connection first calls `before()`: a promise returned delays the destroy until it
 * settles (at most `ms`), and any further destroy meanwhile (close() after `_onError`) waits
 * with it; undefined destroys at once. What `before` stands for (cluster/session-expiry.ts: the
 * end of the session marked in Redis) is then done before the client can see the close and
 * connect again elsewhere. Not for the old connection of a takeover on this node
 * (`broker._takingOver`, aedes.js registerClient): the new connection owns the session, nor for
 * a connection already destroyed (its peer closed it). Installed once per connection.
 */
export function closeConnectionAfter(client: Client, before: () => Promise<unknown> | undefined, ms: number): void {
  const conn = client.conn as unknown as { destroy(err?: Error): unknown; destroyed: boolean }
  if (gated.has(conn)) return
  gated.add(conn)
  // client.broker (lib/client.js constructor): its takeovers in flight
  const takingOver = (client as unknown as { broker?: Partial<BrokerTimers> }).broker?._takingOver
  const destroy = conn.destroy
  let waiting = false
  conn.destroy = function gatedDestroy(err?: Error) {
    if (waiting) return conn
    const done = conn.destroyed || (client.id && takingOver?.has(client.id)) ? undefined : before()
    if (!done) {
      conn.destroy = destroy
      return destroy.call(conn, err)
    }
    waiting = true
    const go = (): void => {
      if (!waiting) return
      waiting = false
      clearTimeout(timer)
      conn.destroy = destroy
      destroy.call(conn, err)
    }
    const timer = setTimeout(go, ms)
    done.then(go, go)
    return conn
  }
}

interface ResumingClient {
  version?: number
  clean?: boolean
  /** Clean Start of the CONNECT (lib/handlers/connect.js) */
  _cleanStart?: boolean
  conn?: { once(event: 'close', fn: () => void): unknown }
  once(event: 'connected', fn: () => void): unknown
}

/**
 * Row A20: a v5 session resumed with Clean Start 0 and a Session Expiry Interval of 0 gets its
 * queued messages [MQTT-3.1.2-23] [MQTT-4.6.0-6]. The beta sets `client.clean` from the new
 * interval alone (lib/handlers/connect.js: `client.clean = sessionExpiryInterval === 0`), and its
 * replay (emptyQueue -> emptyQueueFilter) clears every queued message of a `clean` client instead
 * of writing it: the CONNACK said Session Present 1 and the messages were deleted unsent. Here
 * the replay, which starts by asking the store for the queue (`persistence.outgoingStream`, looked
 * up on the broker at call time), sees such a client as not clean until its connect is done
 * (client event 'connected') or its connection closes; live messages meanwhile wait for the replay
 * as for any resumed session (broker/session-order.ts). No upstream issue yet.
 */
export function replayQueueOfResumedV5Sessions(broker: Aedes): void {
  const persistence = (broker as unknown as { persistence: { outgoingStream(client: unknown): unknown } }).persistence
  const outgoingStream = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client: unknown) => {
    const c = client as ResumingClient
    if (c.version === 5 && c.clean === true && c._cleanStart === false) {
      c.clean = false
      const restore = (): void => void (c.clean = true)
      c.once('connected', restore)
      c.conn?.once('close', restore)
    }
    return outgoingStream(client)
  }
}

/**
 * Row A22: in a cluster a client id connecting on another node closes its connection here:
 * Aedes' listener on `$SYS/+/new/clients` (aedes.js `closeSameClients`, as wrapped so far
 * through seam/aedes-new-clients.ts, e.g. by seam/aedes-v5-disconnect.ts onRemoteTakeover)
 * closes the local connection of the id in the notice. Two CONNECTs of one id at once on two
 * nodes then close each other, and a notice that comes late closes a newer connection. Here that
 * listener runs only for a local connection `keep` says lost the session (in a cluster: another
 * connection owns it in Redis); one that keeps it announces itself again
 * (`$SYS/<this node>/new/clients`), so the other node closes its own, whose notice came first.
 * The emitter is not held: the notice is answered at once.
 */
export function closeSameClientsUnlessKept(broker: Aedes, keep: (client: Client) => Promise<boolean>): void {
  wrapNewClientsListener(broker, (inner, b) => (packet, done) => {
    const id = packet.payload.toString()
    const client = b.clients[id]
    if (!client || packet.topic.split('/')[1] === b.id || client.closed) return inner(packet, done)
    done()
    const lost = (): void => {
      // still the same local connection (a newer one here owns the session already)
      if (b.clients[id] === client && !client.closed) inner(packet, () => {})
    }
    keep(client).then((kept) => {
      if (!kept) return lost()
      if (b.clients[id] === client && !client.closed) b.publish({ topic: `$SYS/${b.id}/new/clients`, payload: Buffer.from(id, 'utf8') }, () => {})
    }, lost)
  })
}

/**
 * `fn` once `client`'s connect is done (client event 'connected', lib/handlers/connect.js: after
 * the CONNACK and the replay of its session's queue) or its connection closed, whichever is first;
 * at once when the connection closed already (Aedes' `client.closed`, or the stream destroyed: a
 * client that gave up while its CONNECT waited for Redis, whose 'close' went before this was asked)
 */
export function onceConnectedOrClosed(client: Client, fn: () => void): void {
  const c = client as unknown as { closed?: boolean; once(e: 'connected', f: () => void): unknown; off(e: 'connected', f: () => void): unknown }
  const conn = client.conn as unknown as { destroyed?: boolean; once(e: 'close', f: () => void): unknown; off(e: 'close', f: () => void): unknown }
  if (c.closed || conn.destroyed) return fn()
  const once = (): void => {
    c.off('connected', once)
    conn.off('close', once)
    fn()
  }
  c.once('connected', once)
  conn.once('close', once)
}
