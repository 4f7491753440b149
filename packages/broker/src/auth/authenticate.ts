/**
 * The authenticate hook (and preConnect, which remembers the client id's length): client id
 * length [MQTT-3.1.3-5], identity (password, or a verified client certificate's CN),
 * allow_anonymous, failed-login backoff per address and per username, and the will topic.
 * CONNACK 2/3/4/5 and the socket closed on refusal [MQTT-3.2.2-5].
 */
import { availableParallelism } from 'node:os'
import type { AedesOptions, Client } from 'aedes'
import { addressKey } from '../limits/rate.js'
import { canPublish } from './acl.js'
import { AUTH, grantsOf, type AuthClient, type ClientAuth } from './client-auth.js'
import { certificateCn, clientAddress } from './conn-details.js'
import type { HookOptions } from './hooks.js'
import { dummyHash, verifyPassword } from './password.js'
import { pendingWill } from '../seam/index.js'
import { SYS } from './authorize.js'
import { isShareTopic } from '../shared/names.js'
import { VerifyQueue } from './verify-queue.js'

const ID_LENGTH = Symbol('culex.clientIdLength')
type ConnectingClient = AuthClient & { [ID_LENGTH]?: number }

/** CONNACK return codes of MQTT 3.1.1 */
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

function refusal(returnCode: number, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode })
}

export interface Authenticate {
  preConnect: AedesOptions['preConnect']
  authenticate: AedesOptions['authenticate']
  /** is an anonymous CONNECT accepted right now, and why */
  anonymous(): { allowed: boolean; reason: string }
}

export function createAuthenticate(opts: HookOptions): Authenticate {
  const { state, counters, log } = opts
  const now = opts.now ?? Date.now
  // scrypt runs on the libuv pool (4 threads by default): leave room for other pool work
  const verifier = new VerifyQueue(opts.maxVerifying ?? Math.max(2, Math.min(4, availableParallelism())), opts.maxWaiting ?? 256)
  void dummyHash() // computed now, not on the first unknown user
  /** every anonymous client's: the grants of no user name (grantsOf recomputes them as the ACL changes) */
  const anonymousAuth: ClientAuth = { username: undefined, via: 'anonymous', grants: undefined, version: -1 }

  function anonymous(): { allowed: boolean; reason: string } {
    if (opts.allowAnonymous !== undefined) return { allowed: opts.allowAnonymous, reason: 'allow_anonymous is set' }
    if (opts.cluster) return { allowed: false, reason: 'auto: cluster mode' }
    if (state.users.size > 0) return { allowed: false, reason: 'auto: users exist' }
    return { allowed: true, reason: 'auto: no users yet' }
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
    ;(client as ConnectingClient)[ID_LENGTH] = typeof packet.clientId === 'string' ? packet.clientId.length : 0
    callback(null, true)
  }

  const authenticate: AedesOptions['authenticate'] = (client, username, password, done) => {
    const c = client as ConnectingClient
    const key = addressKey(clientAddress(client))
    const refuse = (code: number, message: string): void => done(refusal(code, message) as never, false)
    const accept = (name: string | undefined, via: ClientAuth['via']): void => {
      const auth: ClientAuth = via === 'anonymous' ? anonymousAuth : { username: name, via, grants: undefined, version: -1 }
      // a will the client may not publish is refused now, not silently dropped later
      const will = pendingWill(client)
      if (will && typeof will.topic === 'string') {
        const g = grantsOf(auth, state)
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

  return { preConnect, authenticate, anonymous }
}
