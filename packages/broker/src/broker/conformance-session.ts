/**
 * Session Present [MQTT-3.2.2-2]: a `clean: false` client that returns to a
 * session the server holds gets Session Present 1, whatever that session
 * holds. Aedes (1.2 and 2.0.0-beta.1) sets it only when the session has subscriptions
 * (lib/handlers/connect.js restoreSubs), so a client whose session holds no
 * subscription (only a QoS 2 message waiting for its PUBREL, or nothing yet)
 * is told it has none, and a careful client would drop its own state.
 *
 * Here the server records which client ids have a session: set when a
 * `clean: false` client is accepted, removed when a `clean: true` one is
 * (that ends the session [MQTT-3.1.2-6]). In memory a Set; in a cluster the
 * Redis set `culex:sessions`, so a client that moves to another node keeps
 * its flag. The check runs in Aedes' preConnect step, before the CONNACK is
 * written; the flag is set on the CONNACK as it is written (seam/mqtt-writes.ts onWrite).
 * Cost: one SISMEMBER per `clean: false` CONNECT and one SADD/SREM per accepted CONNECT.
 *
 * MQTT 5 [MQTT-3.2.2-3]: a CONNACK says success with a reason code, not a return code (both are
 * read); a session exists while its Session Expiry Interval runs (Aedes 2 sets `clean` from it,
 * whatever Clean Start said). Its end removes the mark: in a cluster cluster/session-expiry.ts
 * does (deadlines in Redis); on a single node in memory, Aedes' 'sessionExpired' event, or the
 * connection closing with a Session Expiry Interval of 0 (as a DISCONNECT may set it).
 *
 * A lookup Redis refuses (maxmemory, READONLY) or that fails (the link gave the command up) for a
 * CONNECT whose session outlives the connection is answered CONNACK 3 (MQTT 5: 0x88): the server
 * cannot say whether the session exists [MQTT-3.2.2-2], nor store it. A clean session goes on.
 */
import type { Aedes, Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'
import { clientsOf, closeSameClientsUnlessKept, onWrite, wrapAuthenticate, wrapPreConnect } from '../seam/index.js'
import { SESSIONS_KEY } from '../cluster/keys.js'
import { redisWarnings } from '../ops/redis-refusals.js'

interface SessionMarks {
  has(id: string): Promise<boolean>
  set(id: string, exists: boolean): void
}

function memoryMarks(): SessionMarks {
  const ids = new Set<string>()
  return {
    has: async (id) => ids.has(id),
    set: (id, exists) => void (exists ? ids.add(id) : ids.delete(id)),
  }
}

function redisMarks(db: Redis, log: Logger): SessionMarks {
  const notStored = redisWarnings(log, 'session mark not stored')
  const warn = (err: Error): void => notStored(undefined, err)
  return {
    has: async (id) => (await db.sismember(SESSIONS_KEY, id)) === 1,
    set: (id, exists) => void (exists ? db.sadd(SESSIONS_KEY, id) : db.srem(SESSIONS_KEY, id)).catch(warn),
  }
}

/** emitted on the broker (by the admin API's DELETE /sessions/{id}) when a session is ended from outside */
export const SESSION_ENDED = 'culex:sessionEnded'

/** how a cluster keeps a session end and a CONNECT of the same client id apart (cluster/session-expiry.ts) */
export interface SessionSettler {
  /** before a CONNECT is answered: waits for an end of the id's session in progress, then whether it has one */
  settle(clientId: string): Promise<boolean>
  /** a DISCONNECT that ends the client's session arrived: the end is marked before the connection closes */
  ending(client: Client): void
  /**
   * before a CONNECT is answered: the CONNECTs of a client id take turns until each one's connect is
   * done; once it is this one's, as `settle` (in one round trip when nothing is in the way)
   */
  claimAndSettle(client: Client, clientId: string): Promise<boolean>
  /** whether the client's connection still owns its session (the last one registered of its id, on any node) */
  owns(client: Client): Promise<boolean>
}
const settlers = new WeakMap<Aedes, SessionSettler>()

/**
 * In a cluster every MQTT 5 CONNECT with a client id, Clean Start or not, and every CONNECT with
 * Clean Start 0 first waits for an end of its session in progress on any node [MQTT-4.1.0-2]: the
 * session is read (Session Present, subscriptions) and written only once it is whole or gone.
 */
export function settleSessionsWith(broker: Aedes, settler: SessionSettler): void {
  settlers.set(broker, settler)
  // [MQTT-3.1.4-3] another node's CONNECT of a client id closes the connection here only if that
  // one took the session: of two at once on two nodes, the one registered last keeps it
  closeSameClientsUnlessKept(broker, (client) => settler.owns(client))
}

/**
 * A DISCONNECT from `client`, before Aedes handles it (broker/conformance.ts guard): Aedes closes
 * the connection at once and ends the session only after its close steps, so a client that saw
 * the close could reconnect on another node before the end is even decided. An MQTT 5 DISCONNECT
 * that leaves a Session Expiry Interval of 0 has the end marked now, its Redis write issued
 * before the connection is closed: one that sets 0, and any from a client whose interval is 0 (a
 * non-zero one then is a protocol error [MQTT-3.14.2-2]: the session still ends, with DISCONNECT
 * 0x82 from broker/mqtt5-packets.ts, which runs after this).
 */
export function disconnecting(broker: Aedes, client: Client, packet: { properties?: { sessionExpiryInterval?: number } }): void {
  const settler = settlers.get(broker)
  if (!settler || client.version !== 5) return
  if (client.sessionExpiryInterval === 0 || packet.properties?.sessionExpiryInterval === 0) settler.ending(client)
}

export function installSessionPresent(broker: Aedes, redis: Redis | undefined, log: Logger): void {
  const marks = redis ? redisMarks(redis, log) : memoryMarks()
  /** CONNECTs whose session lookup failed, with Redis' error: refused in authenticate, next */
  const unavailable = new WeakMap<Client, Error>()
  // only a cluster's lookups can fail (in memory they cannot): one node's CONNECTs keep their path
  if (redis) wrapAuthenticate(broker, (authenticate) => (client, username, password, done) => {
    const err = unavailable.get(client)
    if (!err) return authenticate(client, username, password, done)
    // the error itself (a ReplyError stays one: ops/redis-refusals.ts logs and counts it), with the
    // CONNACK's return code
    done(Object.assign(err, { returnCode: SERVER_UNAVAILABLE }), false)
  })
  // the lookup must finish before Aedes writes the CONNACK, and before it reads the session
  // (lib/handlers/connect.js fetchSubs): in its preConnect step
  wrapPreConnect(broker, (preConnect) => (client, packet, cb) => {
    preConnect(client, packet, (err, ok) => {
      // a cluster settles MQTT 5 CONNECTs and those with Clean Start 0 (which look up the mark
      // anyway); an MQTT 3.1.1 clean CONNECT goes on at once, as before (its id has no v5 session end)
      const settle = packet.clean && (packet as { protocolVersion?: number }).protocolVersion !== 5 ? undefined : settlers.get(broker)
      if (err || !ok || !packet.clientId || (packet.clean && !settle)) return cb(err, ok)
      const id = packet.clientId
      ;(settle ? settle.claimAndSettle(client, id) : marks.has(id)).then(
        (had) => {
          // client.conn: the connection the CONNACK is written to
          if (had && !packet.clean) onWrite(client.conn, (p) => {
            if (p.cmd === 'connack' && succeeded(p)) p.sessionPresent = true
          })
          cb(null, true)
        },
        (e: Error) => {
          // [MQTT-3.2.2-2] a session that outlives the connection cannot be answered for while
          // Redis refuses its lookup (maxmemory, READONLY) or the link gave the command up: the
          // CONNECT is refused with 3 "Server unavailable" (MQTT 5: 0x88) from authenticate, not
          // accepted with Session Present 0 while the session may exist; a clean one goes on
          if (keepsSession(packet as Parameters<typeof keepsSession>[0])) unavailable.set(client, e)
          else log.debug({ client: packet.clientId, err: e.message }, 'session lookup failed for a clean session: connecting')
          cb(null, true)
        },
      )
    })
  })
  // a session ended by the admin API: its client id no longer has one [MQTT-3.2.2-1] at its next CONNECT
  ;(broker as unknown as NodeJS.EventEmitter).on(SESSION_ENDED, (id: string) => marks.set(id, false))
  broker.on('connackSent', (connack: Ack, client: Client) => {
    if (succeeded(connack) && client.id) marks.set(client.id, client.clean === false)
  })
  if (redis) return
  // a single node in memory: the end of an MQTT 5 session (in a cluster, session-expiry.ts's)
  ;(broker as unknown as NodeJS.EventEmitter).on('sessionExpired', (client: Client) => client.id && marks.set(client.id, false))
  broker.on('clientDisconnect', (client: Client) => {
    const current = clientsOf(broker)[client.id]
    if (client.version === 5 && client.sessionExpiryInterval === 0 && (!current || current === client)) marks.set(client.id, false)
  })
}

/** CONNACK return code 3 (MQTT 5: reason code 0x88, which Aedes maps it to) */
const SERVER_UNAVAILABLE = 3

/** whether a CONNECT asks for a session that outlives its connection: 3.1.1 Clean Session 0, MQTT 5 a Session Expiry Interval */
function keepsSession(packet: { clean: boolean; protocolVersion?: number; properties?: { sessionExpiryInterval?: number } }): boolean {
  return packet.protocolVersion === 5 ? (packet.properties?.sessionExpiryInterval ?? 0) > 0 : !packet.clean
}

/** a CONNACK (3.1.1 return code, 5 reason code) */
interface Ack {
  returnCode?: number
  reasonCode?: number
}

/** a CONNACK accepting the connection */
const succeeded = (p: Ack): boolean => (p.returnCode ?? p.reasonCode) === 0
