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


/**
 * Aedes' DISCONNECT handler (aedes 2.0.0-beta.1 lib/handlers/index.js) closes the connection with
 * `client.conn.destroy()` first; the client's close steps (lib/client.js close: will, session
 * expiry) follow the socket's 'close', and the client sees the close at once. Here the next
 * destroy of the client's connection waits for `done` (at most `ms`): what `done` stands for
 * (cluster/session-expiry.ts: the end of the session marked in Redis) happens before the client
 * can see the close and connect again. Row A19.
 */
export function closeConnectionAfter(client: Client, done: Promise<unknown>, ms: number): void {
  const conn = client.conn as unknown as { destroy(err?: Error): unknown }
  const destroy = conn.destroy
  conn.destroy = function deferredDestroy(err?: Error) {
    conn.destroy = destroy
    let gone = false
    const go = (): void => {
      if (gone) return
      gone = true
      clearTimeout(timer)
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
