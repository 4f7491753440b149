/**
 * Users: a name, a scrypt hash (never the password) and roles. This module is
 * pure: the users-file text format and the rules for names; where users are
 * kept (a file for one node, Redis for a cluster) lives in store.ts.
 *
 * Users file, one user per line (like Mosquitto's password file, plus roles):
 *
 *   # comment
 *   alice:$scrypt$N=16384,r=8,p=1$<salt>$<hash>:device,readonly
 */
import { isValidHash } from './password.js'

export interface UserRecord {
  username: string
  hash: string
  roles: string[]
}

/** name -> record, as every store hands it to the node */
export type UserMap = ReadonlyMap<string, UserRecord>

/**
 * A username becomes a topic level through %u in ACL rules, so it may not
 * hold the topic separator or wildcards; ':' and whitespace would break the
 * file format.
 */
export function usernameProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty'
  if (name.length > 256) return 'must be at most 256 characters'
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return 'must not contain control characters'
  }
  if (/[/+#:\s]/u.test(name)) return "must not contain '/', '+', '#', ':' or spaces"
  if (name.startsWith('$')) return "must not start with '$'"
  return undefined
}

export function roleProblem(role: string): string | undefined {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(role) ? undefined : `role "${role}" must be 1-64 letters, digits, '_', '.' or '-'`
}

export function parseRoles(text: string | undefined): string[] {
  if (!text) return []
  const roles = [...new Set(text.split(',').map((r) => r.trim()).filter(Boolean))]
  for (const r of roles) {
    const problem = roleProblem(r)
    if (problem) throw new Error(problem)
  }
  return roles
}

export class UsersFileError extends Error {}

/** parse a users file; a malformed line is an error naming the line (a half-read file must not lock users out silently) */
export function parseUsersFile(text: string, source = 'users file'): Map<string, UserRecord> {
  const users = new Map<string, UserRecord>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line.startsWith('#')) continue
    const [username = '', hash = '', roles, ...rest] = line.split(':')
    const where = `${source} line ${i + 1}`
    if (rest.length > 0) throw new UsersFileError(`${where}: expected user:hash[:roles]`)
    const problem = usernameProblem(username)
    if (problem) throw new UsersFileError(`${where}: username ${problem}`)
    if (!isValidHash(hash)) throw new UsersFileError(`${where}: not a $scrypt$ hash (write it with \`culex user\`)`)
    if (users.has(username)) throw new UsersFileError(`${where}: user "${username}" appears twice`)
    let parsedRoles: string[]
    try {
      parsedRoles = parseRoles(roles)
    } catch (err) {
      throw new UsersFileError(`${where}: ${(err as Error).message}`)
    }
    users.set(username, { username, hash, roles: parsedRoles })
  }
  return users
}

export function formatUsersFile(users: Iterable<UserRecord>): string {
  const lines = ['# Culex users: user:scrypt-hash[:role,role]. Manage with `culex user add|passwd|remove|list`.']
  for (const u of [...users].sort((a, b) => a.username.localeCompare(b.username))) {
    lines.push(u.roles.length ? `${u.username}:${u.hash}:${u.roles.join(',')}` : `${u.username}:${u.hash}`)
  }
  return `${lines.join('\n')}\n`
}

/** Redis hash value of one user */
export function encodeUserRecord(u: UserRecord): string {
  return JSON.stringify({ hash: u.hash, roles: u.roles })
}

export function decodeUserRecord(username: string, value: string): UserRecord | undefined {
  try {
    const v = JSON.parse(value) as { hash?: unknown; roles?: unknown }
    if (typeof v.hash !== 'string' || !isValidHash(v.hash) || usernameProblem(username)) return undefined
    const roles = Array.isArray(v.roles) ? v.roles.filter((r): r is string => typeof r === 'string' && !roleProblem(r)) : []
    return { username, hash: v.hash, roles }
  } catch {
    return undefined
  }
}
