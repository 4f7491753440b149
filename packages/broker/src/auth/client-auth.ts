/**
 * What a connected client is allowed, kept on its Aedes Client object from its CONNACK on
 * (auth/authenticate.ts sets it, auth/authorize.ts reads it).
 */
import type { Client } from 'aedes'
import type { Grants } from './acl.js'
import type { AuthState } from './state.js'

/**
 * what a connected client is allowed; kept on the Aedes client object. Its client id is the
 * Client's own `id`. Anonymous clients share one (their grants depend on no name: issue 15,
 * ~60 B per idle connection).
 */
export interface ClientAuth {
  username: string | undefined
  /** how the client proved who it is */
  via: 'anonymous' | 'password' | 'certificate'
  grants: Grants | undefined
  version: number
}

export const AUTH = Symbol('culex.auth')

export type AuthClient = Client & { [AUTH]?: ClientAuth }

/** the client's grants, (re)computed when users or ACL changed since they were computed */
export function grantsOf(auth: ClientAuth, state: AuthState): Grants | undefined {
  if (auth.version !== state.version) {
    const acl = state.acl
    const roles = auth.username !== undefined ? (state.users.get(auth.username)?.roles ?? []) : []
    auth.grants = acl ? acl.grantsFor(auth.username, roles) : undefined
    auth.version = state.version
  }
  return auth.grants
}
