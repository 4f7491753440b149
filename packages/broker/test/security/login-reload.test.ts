/**
 * A login whose password check is still running when users are reloaded (another user added, an
 * ACL pushed: every change rebuilds the records) succeeds if its user is unchanged, and fails if
 * the user was removed or its password changed meanwhile.
 */
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import { createAuthHooks } from '../../src/auth/hooks.js'
import { hashPassword } from '../../src/auth/password.js'
import { AuthState } from '../../src/auth/state.js'
import type { UserRecord } from '../../src/auth/users.js'
import { FailureBackoff } from '../../src/limits/rate.js'
import { HotCounters } from '../../src/ops/metrics.js'

const FAST = { N: 1024, r: 8, p: 1 }

async function setup(): Promise<{ state: AuthState; login: () => Promise<boolean>; alice: UserRecord }> {
  const state = new AuthState()
  const alice: UserRecord = { username: 'alice', hash: await hashPassword('alice-password', FAST), roles: [] }
  state.apply({ users: new Map([['alice', alice]]) })
  const backoff = { threshold: 0, baseMs: 1000, maxMs: 1000 }
  const { hooks } = createAuthHooks({
    state,
    counters: new HotCounters(),
    log: pino({ level: 'silent' }),
    cluster: true,
    allowAnonymous: undefined,
    maxClientIdLength: 65535,
    maxTopicLength: 1024,
    certAsUsername: false,
    addressBackoff: new FailureBackoff(backoff),
    userBackoff: new FailureBackoff(backoff),
  })
  const client = { id: 'c1', conn: { remoteAddress: '127.0.0.1', remotePort: 5000 } } as unknown as Client
  const login = (): Promise<boolean> =>
    new Promise((resolve) => hooks.authenticate!(client, 'alice', Buffer.from('alice-password'), (err, ok) => resolve(!err && ok === true)))
  return { state, login, alice }
}

describe('login during a users reload', () => {
  it('succeeds when the reload kept the user as it was', async () => {
    const { state, login, alice } = await setup()
    const pending = login()
    // the same user, rebuilt by a reload (new object, same hash), while scrypt runs
    state.apply({ users: new Map([['alice', { ...alice }], ['bob', { ...alice, username: 'bob' }]]) })
    expect(await pending).toBe(true)
  })

  it('fails when the user was removed or its password changed meanwhile', async () => {
    const { state, login, alice } = await setup()
    const removed = login()
    state.apply({ users: new Map() })
    expect(await removed).toBe(false)

    state.apply({ users: new Map([['alice', alice]]) })
    const newHash = await hashPassword('new-password', FAST)
    const changed = login()
    state.apply({ users: new Map([['alice', { ...alice, hash: newHash }]]) })
    expect(await changed).toBe(false)
  })
})
