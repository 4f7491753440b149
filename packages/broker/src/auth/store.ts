/**
 * Where users and the ACL are kept. One node: a users file (and the ACL
 * file). A cluster: Redis, so every node agrees:
 *
 *   culex:auth:users    hash  username -> {"hash": "$scrypt$...", "roles": [...]}
 *   culex:auth:acl      string, the ACL document (YAML)
 *   culex:auth:version  counter, bumped by every change; nodes poll it
 *
 * Writers change data and bump the version in one MULTI, so a node that sees
 * the new version reads the new data.
 */
import { readFileSync, renameSync, writeFileSync, existsSync, chmodSync } from 'node:fs'
import { dirname, basename, join } from 'node:path'
import type { Redis } from 'ioredis'
import { connectRedis as connectTarget, parseTarget, redactTarget, type RedisTarget } from '../cluster/redis-connect.js'
import { decodeUserRecord, encodeUserRecord, formatUsersFile, parseUsersFile, type UserRecord } from './users.js'

export const USERS_KEY = 'culex:auth:users'
export const ACL_KEY = 'culex:auth:acl'
export const VERSION_KEY = 'culex:auth:version'

/** what `culex user` reads and writes */
export interface UserStore {
  /** where the users are, for messages ("file users.txt", "Redis redis://...") */
  readonly where: string
  list(): Promise<UserRecord[]>
  get(username: string): Promise<UserRecord | undefined>
  put(user: UserRecord): Promise<void>
  /** false when there was no such user */
  remove(username: string): Promise<boolean>
  close(): Promise<void>
}

/** read a users file; a missing file is an empty one */
export function readUsersFile(path: string): Map<string, UserRecord> {
  if (!existsSync(path)) return new Map()
  return parseUsersFile(readFileSync(path, 'utf8'), path)
}

/** write atomically (temp file + rename, so a node never reads half a file), readable by the owner only */
export function writeUsersFile(path: string, users: Iterable<UserRecord>): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
  writeFileSync(tmp, formatUsersFile(users), { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
}

export class FileUserStore implements UserStore {
  readonly where: string
  constructor(private readonly path: string) {
    this.where = `users file ${path}`
  }
  async list(): Promise<UserRecord[]> {
    return [...readUsersFile(this.path).values()]
  }
  async get(username: string): Promise<UserRecord | undefined> {
    return readUsersFile(this.path).get(username)
  }
  async put(user: UserRecord): Promise<void> {
    const users = readUsersFile(this.path)
    users.set(user.username, user)
    writeUsersFile(this.path, users.values())
  }
  async remove(username: string): Promise<boolean> {
    const users = readUsersFile(this.path)
    if (!users.delete(username)) return false
    writeUsersFile(this.path, users.values())
    return true
  }
  async close(): Promise<void> {}
}

/** a Redis URL (or redis-sentinel:// target) without its password, for messages */
export function redactUrl(url: string | RedisTarget): string {
  try {
    return redactTarget(typeof url === 'string' ? parseTarget(url) : url)
  } catch {
    return 'redis'
  }
}

/** through the one factory (cluster/redis-connect.ts): a redis:// URL or a Sentinel target */
export function connectRedis(url: string | RedisTarget, opts: { lazy?: boolean; failFast?: boolean; connectionName?: string } = {}): Redis {
  // the CLI gives up quickly on an unreachable Redis; a node keeps retrying
  return connectTarget(typeof url === 'string' ? parseTarget(url) : url, opts)
}

export interface AuthSnapshot {
  version: string
  users: Map<string, UserRecord>
  acl: string | undefined
}

export async function readAuthSnapshot(redis: Redis): Promise<AuthSnapshot> {
  const res = await redis.multi().get(VERSION_KEY).hgetall(USERS_KEY).get(ACL_KEY).exec()
  if (!res) throw new Error('Redis transaction aborted')
  for (const [err] of res) if (err) throw err
  const version = (res[0]![1] as string | null) ?? '0'
  const hash = (res[1]![1] as Record<string, string> | null) ?? {}
  const users = new Map<string, UserRecord>()
  for (const [name, value] of Object.entries(hash)) {
    const u = decodeUserRecord(name, value)
    if (u) users.set(name, u)
  }
  return { version, users, acl: (res[2]![1] as string | null) ?? undefined }
}

export async function writeAcl(redis: Redis, text: string | undefined): Promise<void> {
  const m = redis.multi()
  if (text === undefined) m.del(ACL_KEY)
  else m.set(ACL_KEY, text)
  await m.incr(VERSION_KEY).exec()
}

export class RedisUserStore implements UserStore {
  readonly where: string
  private readonly redis: Redis
  private lastError: string | undefined
  /** own connection unless one is lent (the REST API lends the node's data link; close() leaves it open) */
  private readonly borrowed: boolean
  constructor(url: string | RedisTarget, redis?: Redis) {
    this.where = `Redis ${redactUrl(url)}`
    this.borrowed = redis !== undefined
    this.redis = redis ?? connectRedis(url, { failFast: true })
    if (!redis) this.redis.on('error', (err: Error) => (this.lastError = err.message))
  }
  /** a failed command, said in terms of what the user asked for */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw new Error(`cannot use ${this.where}: ${this.lastError ?? (err as Error).message}`)
    }
  }
  async list(): Promise<UserRecord[]> {
    return this.run(async () => [...(await readAuthSnapshot(this.redis)).users.values()])
  }
  async get(username: string): Promise<UserRecord | undefined> {
    const v = await this.run(() => this.redis.hget(USERS_KEY, username))
    return v === null ? undefined : decodeUserRecord(username, v)
  }
  async put(user: UserRecord): Promise<void> {
    await this.run(() => this.redis.multi().hset(USERS_KEY, user.username, encodeUserRecord(user)).incr(VERSION_KEY).exec())
  }
  async remove(username: string): Promise<boolean> {
    const res = await this.run(() => this.redis.multi().hdel(USERS_KEY, username).incr(VERSION_KEY).exec())
    return (res?.[0]?.[1] as number) === 1
  }
  async getAcl(): Promise<string | undefined> {
    return (await this.run(() => this.redis.get(ACL_KEY))) ?? undefined
  }
  async setAcl(text: string | undefined): Promise<void> {
    await this.run(() => writeAcl(this.redis, text))
  }
  async close(): Promise<void> {
    if (!this.borrowed) this.redis.disconnect()
  }
}
