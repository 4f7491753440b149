/**
 * `culex user add|passwd|remove|list|roles`: manage the users a node or a
 * cluster accepts. Passwords are read from a prompt (no echo) or, when stdin
 * is not a terminal, from its first line; never from the command line, where
 * `ps` and shell history would show them.
 *
 * Where the users are, in this order: --users-file PATH (a single node),
 * --redis URL, CULEX_USERS_FILE, CULEX_REDIS_URL, and finally
 * .culex/cluster.json in the current folder, written by `culex cluster up`
 * (`npm run cluster`), so `culex user add alice` there reaches that cluster.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { hashPassword } from '../auth/password.js'
import { FileUserStore, RedisUserStore, type UserStore } from '../auth/store.js'
import { parseRoles, usernameProblem } from '../auth/users.js'

export const MIN_PASSWORD_LENGTH = 8
export const CLUSTER_FILE = join('.culex', 'cluster.json')

export interface TargetOptions {
  usersFile?: string
  redis?: string
}

export type Target = { kind: 'file'; path: string } | { kind: 'redis'; url: string }

export class UsageError extends Error {}

export function resolveTarget(opts: TargetOptions, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Target {
  if (opts.usersFile) return { kind: 'file', path: opts.usersFile }
  if (opts.redis) return { kind: 'redis', url: opts.redis }
  if (env.CULEX_USERS_FILE) return { kind: 'file', path: env.CULEX_USERS_FILE }
  if (env.CULEX_REDIS_URL) return { kind: 'redis', url: env.CULEX_REDIS_URL }
  const clusterFile = join(cwd, CLUSTER_FILE)
  if (existsSync(clusterFile)) {
    let url: unknown
    try {
      url = (JSON.parse(readFileSync(clusterFile, 'utf8')) as { redisUrl?: unknown }).redisUrl
    } catch (err) {
      throw new UsageError(`${clusterFile}: cannot read (${(err as Error).message})`)
    }
    if (typeof url === 'string' && url) return { kind: 'redis', url }
    throw new UsageError(`${clusterFile} has no "redisUrl"`)
  }
  throw new UsageError(
    'where are the users? Pass --users-file PATH (a single node started with --users-file PATH) or --redis URL (a cluster), ' +
      'or run this in the folder where `npm run cluster` runs',
  )
}

export function openStore(target: Target): UserStore {
  return target.kind === 'file' ? new FileUserStore(target.path) : new RedisUserStore(target.url)
}

/** read a password without echo from a terminal */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin
  process.stderr.write(question)
  return new Promise((resolve, reject) => {
    let text = ''
    stdin.setRawMode(true)
    stdin.resume()
    stdin.setEncoding('utf8')
    const finish = (err?: Error): void => {
      stdin.setRawMode(false)
      stdin.pause()
      stdin.off('data', onData)
      process.stderr.write('\n')
      if (err) reject(err)
      else resolve(text)
    }
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish()
        if (ch === '\u0003') return finish(new UsageError('cancelled'))
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1)
        else text += ch
      }
    }
    stdin.on('data', onData)
  })
}

/** the first line of stdin (a pipe or file) */
async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? ''
}

export async function readNewPassword(): Promise<string> {
  let password: string
  if (process.stdin.isTTY) {
    password = await promptHidden('Password: ')
    const again = await promptHidden('Password again: ')
    if (again !== password) throw new UsageError('the passwords differ')
  } else {
    password = await readStdinLine()
  }
  if (password.length < MIN_PASSWORD_LENGTH) throw new UsageError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`)
  return password
}

function checkName(name: string): void {
  const problem = usernameProblem(name)
  if (problem) throw new UsageError(`username ${problem}`)
}

async function withStore(opts: TargetOptions, fn: (store: UserStore) => Promise<void>): Promise<void> {
  const store = openStore(resolveTarget(opts))
  try {
    await fn(store)
  } finally {
    await store.close()
  }
}

type Action = (...args: any[]) => Promise<void>
/** wrap a sub-command action: usage errors exit 2, like a bad config value; anything else 1 */
export const runAction =
  (name: string) =>
  (fn: Action): Action =>
  async (...args) => {
    try {
      await fn(...args)
    } catch (err) {
      process.stderr.write(`culex ${name}: ${(err as Error).message}\n`)
      process.exit(err instanceof UsageError ? 2 : 1)
    }
  }
const run = runAction('user')

function targetFlags(cmd: Command): Command {
  return cmd
    .option('--users-file <path>', 'users file of a single node (env CULEX_USERS_FILE)')
    .option('--redis <url>', 'Redis of a cluster (env CULEX_REDIS_URL; default: .culex/cluster.json here)')
}

export function registerUser(program: Command): void {
  const user = program.command('user').description('manage the users who may connect (password from a prompt or stdin, never argv)')

  targetFlags(user.command('add <name>').description('add a user; the password is read from a prompt, or from stdin when it is not a terminal'))
    .option('--roles <roles>', 'comma-separated roles for ACL rules, e.g. device,readonly')
    .action(
      run(async (name: string, opts: TargetOptions & { roles?: string }) => {
        checkName(name)
        const roles = parseRoles(opts.roles)
        await withStore(opts, async (store) => {
          if (await store.get(name)) throw new UsageError(`user "${name}" exists (change the password with: culex user passwd ${name})`)
          const hash = await hashPassword(await readNewPassword())
          await store.put({ username: name, hash, roles })
          process.stdout.write(`added user ${name}${roles.length ? ` (roles ${roles.join(',')})` : ''} to ${store.where}\n`)
        })
      }),
    )

  targetFlags(user.command('passwd <name>').description('change a password (prompt, or stdin when it is not a terminal)')).action(
    run(async (name: string, opts: TargetOptions) => {
      await withStore(opts, async (store) => {
        const u = await store.get(name)
        if (!u) throw new UsageError(`no user "${name}" in ${store.where}`)
        await store.put({ ...u, hash: await hashPassword(await readNewPassword()) })
        process.stdout.write(`changed the password of ${name} in ${store.where}\n`)
      })
    }),
  )

  targetFlags(user.command('roles <name> <roles>').description('set the roles of a user (comma-separated, "" for none)')).action(
    run(async (name: string, rolesText: string, opts: TargetOptions) => {
      const roles = parseRoles(rolesText)
      await withStore(opts, async (store) => {
        const u = await store.get(name)
        if (!u) throw new UsageError(`no user "${name}" in ${store.where}`)
        await store.put({ ...u, roles })
        process.stdout.write(`roles of ${name}: ${roles.join(',') || '(none)'}\n`)
      })
    }),
  )

  targetFlags(user.command('remove <name>').description('remove a user; its connected clients are disconnected')).action(
    run(async (name: string, opts: TargetOptions) => {
      await withStore(opts, async (store) => {
        if (!(await store.remove(name))) throw new UsageError(`no user "${name}" in ${store.where}`)
        process.stdout.write(`removed user ${name} from ${store.where}\n`)
      })
    }),
  )

  targetFlags(user.command('list').description('list users and their roles'))
    .option('--json', 'JSON output')
    .action(
      run(async (opts: TargetOptions & { json?: boolean }) => {
        await withStore(opts, async (store) => {
          const users = (await store.list()).sort((a, b) => a.username.localeCompare(b.username))
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(users.map((u) => ({ username: u.username, roles: u.roles })))}\n`)
            return
          }
          for (const u of users) process.stdout.write(`${u.username}${u.roles.length ? `\t${u.roles.join(',')}` : ''}\n`)
        })
      }),
    )
}
