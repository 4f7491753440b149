/**
 * The Aedes hooks that enforce authentication and ACLs, made for a node from its users, ACL and
 * limits: preConnect and authenticate (auth/authenticate.ts: client id, identity, anonymous,
 * failed-login backoff, the will topic), authorizePublish, authorizeSubscribe and
 * authorizeForward (auth/authorize.ts: $SYS, `$share/`, topic length, the ACL). What a connected
 * client is allowed is kept on its Client (auth/client-auth.ts).
 */
import type { AedesOptions, Client } from 'aedes'
import type { Logger } from '../log.js'
import type { HotCounters } from '../ops/metrics.js'
import type { FailureBackoff } from '../limits/rate.js'
import { createAuthenticate } from './authenticate.js'
import { createAuthorize } from './authorize.js'
import { AUTH, type AuthClient, type ClientAuth } from './client-auth.js'
import type { AuthState } from './state.js'

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

export interface AuthHooks {
  hooks: Partial<AedesOptions>
  /** is an anonymous CONNECT accepted right now, and why */
  anonymous(): { allowed: boolean; reason: string }
  /** the auth of a connected client (undefined before CONNACK) */
  authOf(client: Client): ClientAuth | undefined
}

export function createAuthHooks(opts: HookOptions): AuthHooks {
  const { preConnect, authenticate, anonymous } = createAuthenticate(opts)
  const { authorizePublish, authorizeSubscribe, authorizeForward } = createAuthorize(opts)
  return {
    hooks: { preConnect, authenticate, authorizePublish, authorizeSubscribe, authorizeForward },
    anonymous,
    authOf: (client) => (client as AuthClient)[AUTH],
  }
}
