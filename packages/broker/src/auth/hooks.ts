/**
 * The Aedes hooks that enforce authentication and ACLs.
 *
 * - authenticate: client id length [MQTT-3.1.3-5], identity (password,
 *   or a verified client certificate's CN), allow_anonymous, failed-login
 *   backoff per address and per username, and the will topic. CONNACK 2/3/4/5
 *   and the socket closed on refusal [MQTT-3.2.2-5].
 * - authorizePublish: clients never publish to $SYS (Aedes' own default does
 *   the same; without it a client could forge `$SYS/<node>/new/clients` and
 *   disconnect others, aedes#597), topic length, ACL. A denied PUBLISH
 *   closes the connection [MQTT-3.3.5-2]: it reaches no subscriber, is
 *   counted in culex_publish_denied_total, and every node does the same.
 *   An MQTT 5 client's denied QoS 1/2 PUBLISH gets PUBACK/PUBREC 0x87
 *   instead and its connection stays (Aedes 2; QoS 0: dropped).
 * - authorizeSubscribe: a denied filter gets return code 0x80 in the SUBACK
 *   [MQTT-3.9.3-2] (0x87 for MQTT 5 clients, broker/mqtt5.ts); the others in
 *   the same SUBSCRIBE are unaffected. A shared
 *   subscription `$share/g/f` is checked as `f`; PUBLISH to `$share/...` is refused.
 * - authorizeForward: the ACL is checked again for each delivered message,
 *   so a deny rule that overlaps a wider allowed subscription, and ACL
 *   changes, apply to existing subscriptions at once. No allocation.
 */
import { availableParallelism } from 'node:os'
import type { AedesOptions, Client } from 'aedes'
import type { Logger } from '../log.js'
import type { HotCounters } from '../ops/metrics.js'
import { addressKey, type FailureBackoff } from '../limits/rate.js'
import { canPublish, canRead, canSubscribe, type Grants } from './acl.js'
import { dummyHash, verifyPassword } from './password.js'
import type { AuthState } from './state.js'
import { pendingWill, protocolVersion } from '../seam/index.js'
import { aclFilter, isShareTopic } from '../shared/names.js'

export interface HookOptions {
  state: AuthState
  counters: HotCounters
  log: Logger
  /** cluster mode: anonymous is off unless allow_anonymous is set */
  cluster: boolean
  allowAnonymous: boolean | undefined
  maxClientIdLength: number
  maxTopicLength: number
  /** take the username from a verified client certificate's CN */
  certAsUsername: boolean
  addressBackoff: FailureBackoff
  userBackoff: FailureBackoff
  now?: () => number
  /** concurrent password checks (scrypt on the thread pool) and how many may wait */
  maxVerifying?: number
  maxWaiting?: number
}

/** what a connected client is allowed; kept on the Aedes client object */
export interface ClientAuth {
  username: string | undefined
  clientId: string
  /** how the client proved who it is */
  via: 'anonymous' | 'password' | 'certificate'
  grants: Grants | undefined
  version: number
}

export const AUTH = Symbol('culex.auth')
const ID_LENGTH = Symbol('culex.clientIdLength')

type AuthClient = Client & { [AUTH]?: ClientAuth; [ID_LENGTH]?: number }

/** the source address of a client: PROXY-protocol address when present, else the socket's */
export function clientAddress(client: Client): string | undefined {
  const c = client as unknown as {
    connDetails?: { ipAddress?: string } | null
    conn?: { remoteAddress?: string }
    req?: { socket?: { remoteAddress?: string } }
  }
  return c.connDetails?.ipAddress ?? c.conn?.remoteAddress ?? c.req?.socket?.remoteAddress
}

/**
 * The CN of a client certificate the TLS layer verified: the node's own TLS
 * listener (tls.TLSSocket, authorized), or HAProxy's via PROXY v2 (the
 * PROXY gate sets connDetails.certAuthorized and connDetails.cert.subject.CN).
 */
export function certificateCn(client: Client): string | undefined {
  const c = client as unknown as {
    connDetails?: { certAuthorized?: boolean; cert?: { subject?: { CN?: unknown } } } | null
    conn?: { authorized?: boolean; getPeerCertificate?: () => { subject?: { CN?: unknown } } }
  }
  const d = c.connDetails
  if (d?.certAuthorized === true && typeof d.cert?.subject?.CN === 'string') return d.cert.subject.CN
  const conn = c.conn
  if (conn?.authorized === true && typeof conn.getPeerCertificate === 'function') {
    const cn = conn.getPeerCertificate()?.subject?.CN
    if (typeof cn === 'string') return cn
  }
  return undefined
}

/** CONNACK return codes of MQTT 3.1.1 */
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

function refusal(returnCode: number, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode })
}

const SYS = '$SYS'

/** bounded concurrency for password checks: scrypt is deliberately expensive */
class VerifyQueue {
  private active = 0
  private readonly waiting: Array<() => void> = []
  constructor(
    private readonly maxActive: number,
    private readonly maxWaiting: number,
  ) {}

  /** undefined = overloaded, refuse */
  run<T>(fn: () => Promise<T>): Promise<T> | undefined {
    if (this.active >= this.maxActive && this.waiting.length >= this.maxWaiting) return undefined
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.active++
        fn()
          .then(resolve, reject)
          .finally(() => {
            this.active--
            this.waiting.shift()?.()
          })
      }
      if (this.active < this.maxActive) start()
      else this.waiting.push(start)
    })
  }
}

export interface AuthHooks {
  hooks: Partial<AedesOptions>
  /** is an anonymous CONNECT accepted right now, and why */
  anonymous(): { allowed: boolean; reason: string }
  /** the auth of a connected client (undefined before CONNACK) */
  authOf(client: Client): ClientAuth | undefined
}

export function createAuthHooks(opts: HookOptions): AuthHooks {
  const { state, counters, log } = opts
  const now = opts.now ?? Date.now
  // scrypt runs on the libuv pool (4 threads by default): leave room for other pool work
  const verifier = new VerifyQueue(opts.maxVerifying ?? Math.max(2, Math.min(4, availableParallelism())), opts.maxWaiting ?? 256)
  void dummyHash() // computed now, not on the first unknown user

  function anonymous(): { allowed: boolean; reason: string } {
    if (opts.allowAnonymous !== undefined) return { allowed: opts.allowAnonymous, reason: 'allow_anonymous is set' }
    if (opts.cluster) return { allowed: false, reason: 'auto: cluster mode' }
    if (state.users.size > 0) return { allowed: false, reason: 'auto: users exist' }
    return { allowed: true, reason: 'auto: no users yet' }
  }

  /** (re)compute grants when users or ACL changed since they were computed */
  function grants(auth: ClientAuth): Grants | undefined {
    if (auth.version !== state.version) {
      const acl = state.acl
      const roles = auth.username !== undefined ? (state.users.get(auth.username)?.roles ?? []) : []
      auth.grants = acl ? acl.grantsFor(auth.username, roles) : undefined
      auth.version = state.version
    }
    return auth.grants
  }

  function failed(client: Client, key: string, username: string | undefined, reason: string): void {
    counters.authFailures++
    const t = now()
    const blockMs = opts.addressBackoff.fail(key, t)
    const userBlockMs = username !== undefined ? opts.userBackoff.fail(username, t) : 0
    log.warn({ client: client.id, address: key, username, reason, address_blocked_ms: blockMs || undefined, user_blocked_ms: userBlockMs || undefined }, 'authentication failed')
  }

  const preConnect: AedesOptions['preConnect'] = (client, packet, callback) => {
    // Aedes replaces an empty client id by a generated one: remember what the client sent
    ;(client as AuthClient)[ID_LENGTH] = typeof packet.clientId === 'string' ? packet.clientId.length : 0
    callback(null, true)
  }

  const authenticate: AedesOptions['authenticate'] = (client, username, password, done) => {
    const c = client as AuthClient
    const key = addressKey(clientAddress(client))
    const refuse = (code: number, message: string): void => done(refusal(code, message) as never, false)
    const accept = (name: string | undefined, via: ClientAuth['via']): void => {
      const auth: ClientAuth = { username: name, clientId: client.id, via, grants: undefined, version: -1 }
      // a will the client may not publish is refused now, not silently dropped later
      const will = pendingWill(client)
      if (will && typeof will.topic === 'string') {
        const g = grants(auth)
        if (will.topic.startsWith(SYS) || isShareTopic(will.topic) || will.topic.length > opts.maxTopicLength || (g && !canPublish(g, will.topic, name, client.id))) {
          log.warn({ client: client.id, username: name, topic: will.topic }, 'will topic not allowed: connection refused')
          refuse(NOT_AUTHORIZED, 'will topic not allowed')
          return
        }
      }
      c[AUTH] = auth
      done(null, true)
    }

    // MQTT 3.1.1 lets the server limit client ids [MQTT-3.1.3-5]; Aedes only checks 3.1
    if ((c[ID_LENGTH] ?? 0) > opts.maxClientIdLength) return refuse(IDENTIFIER_REJECTED, 'client id too long')
    if (!state.loaded) return refuse(SERVER_UNAVAILABLE, 'users not loaded yet')

    if (opts.certAsUsername) {
      const cn = certificateCn(client)
      if (cn !== undefined) {
        if (username !== undefined && username !== cn) {
          failed(client, key, username, 'username differs from the certificate CN')
          return refuse(BAD_USERNAME_OR_PASSWORD, 'username differs from certificate')
        }
        return accept(cn, 'certificate')
      }
    }

    if (username === undefined || username === null) {
      if (anonymous().allowed) return accept(undefined, 'anonymous')
      failed(client, key, undefined, 'anonymous not allowed')
      return refuse(NOT_AUTHORIZED, 'anonymous not allowed')
    }

    const t = now()
    if (opts.addressBackoff.blockedFor(key, t) > 0 || opts.userBackoff.blockedFor(username, t) > 0) {
      log.debug({ client: client.id, address: key, username }, 'login refused during backoff')
      return refuse(NOT_AUTHORIZED, 'too many failed logins, try later')
    }
    const user = state.users.get(username)
    const check = verifier.run(async () => verifyPassword(password ?? Buffer.alloc(0), user?.hash ?? (await dummyHash())))
    if (!check) {
      log.warn({ client: client.id, address: key }, 'too many logins being checked: refusing')
      return refuse(SERVER_UNAVAILABLE, 'busy')
    }
    check.then(
      (ok) => {
        // the user may have been removed, or its password changed, while the password was being
        // checked; a reload that kept it as it was (any other change bumps the version and
        // rebuilds the records) must not fail the login
        if (ok && user && state.users.get(username)?.hash === user.hash) {
          opts.userBackoff.succeed(username)
          return accept(username, 'password')
        }
        failed(client, key, username, user ? 'wrong password' : 'unknown user')
        refuse(BAD_USERNAME_OR_PASSWORD, 'bad user name or password')
      },
      (err: Error) => {
        log.error({ err: err.message }, 'password check failed')
        refuse(SERVER_UNAVAILABLE, 'password check failed')
      },
    )
  }

  const authorizePublish: AedesOptions['authorizePublish'] = (client, packet, callback) => {
    const topic = packet.topic
    // [aedes#597] keep Aedes' default: $SYS is the brokers' own namespace
    if (topic.startsWith(SYS)) {
      counters.publishDenied++
      return callback(new Error('$SYS topics are reserved'))
    }
    // `$share/...` names shared subscriptions (shared/names.ts), never a message: refused like
    // any topic the client may not use, by closing the connection (3.1.1 has no PUBACK code)
    if (isShareTopic(topic)) {
      counters.publishDenied++
      return callback(new Error('$share topics are reserved for shared subscriptions'))
    }
    // wills of clients of a dead node are published without a client: they were checked at CONNECT
    if (!client) return callback(null)
    if (topic.length > opts.maxTopicLength) {
      counters.publishDenied++
      return callback(new Error('topic longer than max_topic_length'))
    }
    const auth = (client as AuthClient)[AUTH]
    if (auth) {
      const g = grants(auth)
      if (g && !canPublish(g, topic, auth.username, auth.clientId)) {
        counters.publishDenied++
        // MQTT 5: Aedes answers PUBACK/PUBREC 0x87 and the connection stays, so a client may repeat it
        if (protocolVersion(client) === 5) log.debug({ client: client.id, username: auth.username, topic }, 'publish denied by ACL: 0x87')
        else log.warn({ client: client.id, username: auth.username, topic }, 'publish denied by ACL: closing the connection [MQTT-3.3.5-2]')
        return callback(new Error('publish denied'))
      }
    }
    callback(null)
  }

  const authorizeSubscribe: AedesOptions['authorizeSubscribe'] = (client, sub, callback) => {
    if (sub.topic.length > opts.maxTopicLength) return callback(null, null)
    const auth = (client as AuthClient)[AUTH]
    if (auth) {
      const g = grants(auth)
      // `$share/g/f` needs subscribe permission on `f` (shared/names.ts)
      if (g && !canSubscribe(g, aclFilter(sub.topic), auth.username, auth.clientId)) {
        log.debug({ client: client.id, username: auth.username, filter: sub.topic }, 'subscription denied by ACL (0x80)')
        return callback(null, null) // [MQTT-3.9.3-2] return code 0x80 for this filter
      }
    }
    callback(null, sub)
  }

  const authorizeForward: AedesOptions['authorizeForward'] = (client, packet) => {
    const auth = (client as AuthClient)[AUTH]
    if (auth === undefined || state.acl === undefined) return packet
    const g = grants(auth)
    return g === undefined || canRead(g, packet.topic, auth.username, auth.clientId) ? packet : null
  }

  return {
    hooks: { preConnect, authenticate, authorizePublish, authorizeSubscribe, authorizeForward },
    anonymous,
    authOf: (client) => (client as AuthClient)[AUTH],
  }
}
