/**
 * The users and ACL a node enforces, kept current:
 * - one node: the users file and the ACL file are re-read when they change
 *   (fs.watchFile stats them every 250 ms, which also survives editors that
 *   replace the file by renaming);
 * - cluster: every node polls culex:auth:version in Redis every 500 ms and
 *   re-reads users and ACL when it moves, so a change made through any node
 *   or `culex user` applies on every node within a second. The node keeps
 *   the last good copy while Redis is unreachable.
 * A file or Redis value that does not parse keeps the previous good state
 * (and is logged); an ACL that has never parsed denies everything.
 */
import { EventEmitter } from 'node:events'
import { existsSync, readFileSync, unwatchFile, watchFile } from 'node:fs'
import type { Logger } from '../log.js'
import { Acl, AclError } from './acl.js'
import type { RedisTarget } from '../cluster/redis-connect.js'
import { connectRedis, readAuthSnapshot, redactUrl, VERSION_KEY, writeAcl } from './store.js'
import type { UserMap, UserRecord } from './users.js'
import { UsersFileError, parseUsersFile } from './users.js'

export class AuthState extends EventEmitter {
  users: UserMap = new Map()
  acl: Acl | undefined
  /** bumped on every applied change; per-client grants are recomputed when it moves */
  version = 0
  /** false until the first users/ACL load (cluster: until Redis first answers) */
  loaded = false

  apply(change: { users?: UserMap; acl?: Acl | null }): void {
    const removed: string[] = []
    if (change.users) {
      for (const name of this.users.keys()) if (!change.users.has(name)) removed.push(name)
      this.users = change.users
    }
    if (change.acl !== undefined) this.acl = change.acl ?? undefined
    this.version++
    this.loaded = true
    this.emit('change', { removed })
  }
}

export interface Source {
  /** re-read now (admin endpoint) */
  reload(): Promise<void>
  close(): Promise<void>
}

const DENY_ALL = (): Acl => Acl.parse('{}')

function readUsers(path: string): Map<string, UserRecord> {
  if (!existsSync(path)) {
    throw new UsersFileError(`users_file ${path} does not exist (create it with: culex user add <name> --users-file ${path})`)
  }
  return parseUsersFile(readFileSync(path, 'utf8'), path)
}

function readAcl(path: string): { text: string; acl: Acl } {
  if (!existsSync(path)) throw new AclError(`acl_file ${path} does not exist`)
  const text = readFileSync(path, 'utf8')
  return { text, acl: Acl.parse(text, path) }
}

const WATCH_MS = 250

/** single node: files, watched; throws at start-up when a configured file is missing or invalid */
export function startFileSource(state: AuthState, opts: { usersFile?: string; aclFile?: string; log: Logger }): Source {
  const { usersFile, aclFile, log } = opts
  const loadUsers = (): Map<string, UserRecord> => (usersFile ? readUsers(usersFile) : new Map())
  state.apply({ users: loadUsers(), acl: aclFile ? readAcl(aclFile).acl : null })
  const reloadUsers = (): void => {
    try {
      state.apply({ users: loadUsers() })
      log.info({ users: state.users.size }, 'users reloaded')
    } catch (err) {
      log.error({ err: (err as Error).message }, 'users file not reloaded: keeping the previous users')
    }
  }
  const reloadAcl = (): void => {
    try {
      state.apply({ acl: readAcl(aclFile!).acl })
      log.info('ACL reloaded')
    } catch (err) {
      log.error({ err: (err as Error).message }, 'ACL file not reloaded: keeping the previous rules')
    }
  }
  if (usersFile) watchFile(usersFile, { interval: WATCH_MS, persistent: false }, reloadUsers)
  if (aclFile) watchFile(aclFile, { interval: WATCH_MS, persistent: false }, reloadAcl)
  return {
    async reload() {
      if (usersFile) reloadUsers()
      if (aclFile) reloadAcl()
    },
    async close() {
      if (usersFile) unwatchFile(usersFile, reloadUsers)
      if (aclFile) unwatchFile(aclFile, reloadAcl)
    },
  }
}

const POLL_MS = 250

/** cluster: Redis, polled; never blocks start-up (the node answers CONNACK 3 until the first load) */
export function startRedisSource(state: AuthState, opts: { url: string | RedisTarget; aclFile?: string; log: Logger; pollMs?: number; connectionName?: string }): Source {
  const { url, aclFile, log } = opts
  const redis = connectRedis(url, { connectionName: opts.connectionName })
  let lastError = ''
  redis.on('error', (err: Error) => {
    if (err.message !== lastError) log.warn({ redis: redactUrl(url), err: err.message }, 'auth: Redis link error')
    lastError = err.message
  })
  // a node started with acl_file pushes it to the cluster (at start and when the file changes)
  let push: string | undefined
  const readLocalAcl = (): void => {
    try {
      push = readAcl(aclFile!).text
    } catch (err) {
      log.error({ err: (err as Error).message }, 'ACL file not pushed to the cluster')
    }
  }
  if (aclFile) {
    push = readAcl(aclFile).text // invalid at start-up: refuse to start
    watchFile(aclFile, { interval: WATCH_MS, persistent: false }, readLocalAcl)
  }
  let seen: string | undefined
  let busy: Promise<void> | undefined
  let closed = false

  const sync = async (force: boolean): Promise<void> => {
    if (push !== undefined) {
      const text = push
      await writeAcl(redis, text)
      if (push === text) push = undefined
      log.info({ acl_file: aclFile }, 'ACL file pushed to the cluster')
    }
    if (!force && state.loaded && ((await redis.get(VERSION_KEY)) ?? '0') === seen) return
    const snap = await readAuthSnapshot(redis)
    let acl: Acl | null = null
    if (snap.acl !== undefined) {
      try {
        acl = Acl.parse(snap.acl, 'ACL in Redis')
      } catch (err) {
        log.error({ err: (err as Error).message }, 'ACL in Redis does not parse: keeping the previous rules')
        acl = state.acl ?? DENY_ALL()
      }
    }
    const first = !state.loaded
    state.apply({ users: snap.users, acl })
    seen = snap.version
    if (first) log.info({ users: snap.users.size, acl: acl !== null }, 'users and ACL loaded from Redis')
    else log.info({ users: snap.users.size, acl: acl !== null }, 'users and ACL reloaded from Redis')
  }
  const tick = (force = false): Promise<void> =>
    (busy ??= sync(force)
      .catch((err: Error) => {
        if (err.message !== lastError) log.warn({ err: err.message }, 'auth: cannot read users/ACL from Redis (keeping the last copy)')
        lastError = err.message
      })
      .finally(() => {
        busy = undefined
      }))
  const timer = setInterval(() => {
    if (!closed) void tick()
  }, opts.pollMs ?? POLL_MS)
  timer.unref()
  void tick(true)
  return {
    async reload() {
      await busy
      await tick(true)
    },
    async close() {
      closed = true
      clearInterval(timer)
      if (aclFile) unwatchFile(aclFile, readLocalAcl)
      redis.disconnect()
    },
  }
}
