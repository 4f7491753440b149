/**
 * Users and the ACL, the same operations as `culex user` and `culex acl` (commands/): a cluster's
 * live in Redis (every node applies a change within a second, this one at once), a single node's
 * users in its users_file (its ACL file is edited on disk). Passwords come in the JSON body
 * (use HTTPS: port 9443 through HAProxy) and are stored only as scrypt hashes.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { readFileSync } from 'node:fs'
import { Acl } from '../../auth/acl.js'
import { hashPassword } from '../../auth/password.js'
import { FileUserStore, RedisUserStore, type UserStore } from '../../auth/store.js'
import { parseRoles, usernameProblem } from '../../auth/users.js'
import { MIN_PASSWORD_LENGTH } from '../../commands/user.js'
import type { ApiContext } from './context.js'
import { adminErrors, bearer } from './schemas.js'

const userSchema = { type: 'object', properties: { username: { type: 'string' }, roles: { type: 'array', items: { type: 'string' } } }, required: ['username', 'roles'] } as const
const nameParam = { type: 'object', properties: { name: { type: 'string', minLength: 1 } }, required: ['name'] } as const
const password = { type: 'string', minLength: MIN_PASSWORD_LENGTH, description: `at least ${MIN_PASSWORD_LENGTH} characters` } as const
const roles = { type: 'array', items: { type: 'string' }, default: [] } as const
const ok = { 200: { type: 'object', additionalProperties: true }, ...adminErrors } as const
const aclSchema = { type: 'object', properties: { acl: { type: ['string', 'null'], description: 'the ACL document (YAML, docs/security.md); null: no ACL' } }, required: ['acl'] } as const

export function userRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { config } = ctx
  const store = (): UserStore | undefined =>
    ctx.db ? new RedisUserStore(config.redis_url!, ctx.db) : config.users_file ? new FileUserStore(config.users_file) : undefined
  const noStore = (reply: FastifyReply) =>
    reply.status(409).send({ error: 'this node has no users_file: start it with --users-file PATH (a cluster keeps its users in Redis)' })
  const rolesOf = (list: string[]): string[] => {
    try {
      return parseRoles(list.join(','))
    } catch (err) {
      throw Object.assign(err as Error, { statusCode: 400 })
    }
  }
  /** run a change, then apply it on this node now (the others poll) */
  const change = async <T>(fn: (s: UserStore) => Promise<T>): Promise<T> => {
    const s = store()!
    try {
      return await fn(s)
    } finally {
      await s.close()
      await ctx.security.reload()
    }
  }
  const badName = (name: string): string | undefined => {
    const p = usernameProblem(name)
    return p && `username ${p}`
  }

  app.get('/users', { schema: { tags: ['users'], summary: 'Users and their roles (never their password hashes)', security: bearer, response: { 200: { type: 'object', properties: { users: { type: 'array', items: userSchema } } }, ...adminErrors } } }, async (_req, reply) => {
    const s = store()
    if (!s) return noStore(reply)
    try {
      const users = (await s.list()).sort((a, b) => a.username.localeCompare(b.username))
      return { users: users.map((u) => ({ username: u.username, roles: u.roles })) }
    } finally {
      await s.close()
    }
  })

  app.post(
    '/users',
    { schema: { tags: ['users'], summary: 'Add a user (culex user add)', security: bearer, body: { type: 'object', properties: { username: { type: 'string' }, password, roles }, required: ['username', 'password'], additionalProperties: false }, response: { 201: userSchema, ...ok } } },
    async (req, reply) => {
      const b = req.body as { username: string; password: string; roles: string[] }
      if (!store()) return noStore(reply)
      const problem = badName(b.username)
      if (problem) return reply.status(400).send({ error: problem })
      const r = rolesOf(b.roles)
      return change(async (s) => {
        if (await s.get(b.username)) return reply.status(409).send({ error: `user ${b.username} exists (PUT /users/${b.username}/password changes the password)` })
        await s.put({ username: b.username, hash: await hashPassword(b.password), roles: r })
        return reply.status(201).send({ username: b.username, roles: r })
      })
    },
  )

  app.put(
    '/users/:name/password',
    { schema: { tags: ['users'], summary: 'Change a password (culex user passwd)', security: bearer, params: nameParam, body: { type: 'object', properties: { password }, required: ['password'], additionalProperties: false }, response: ok } },
    async (req, reply) => {
      const { name } = req.params as { name: string }
      if (!store()) return noStore(reply)
      return change(async (s) => {
        const u = await s.get(name)
        if (!u) return reply.status(404).send({ error: `no user ${name}` })
        await s.put({ ...u, hash: await hashPassword((req.body as { password: string }).password) })
        return { username: name, roles: u.roles }
      })
    },
  )

  app.put(
    '/users/:name/roles',
    { schema: { tags: ['users'], summary: 'Set the roles of a user (culex user roles)', security: bearer, params: nameParam, body: { type: 'object', properties: { roles }, required: ['roles'], additionalProperties: false }, response: ok } },
    async (req, reply) => {
      const { name } = req.params as { name: string }
      if (!store()) return noStore(reply)
      const r = rolesOf((req.body as { roles: string[] }).roles)
      return change(async (s) => {
        const u = await s.get(name)
        if (!u) return reply.status(404).send({ error: `no user ${name}` })
        await s.put({ ...u, roles: r })
        return { username: name, roles: r }
      })
    },
  )

  app.delete(
    '/users/:name',
    { schema: { tags: ['users'], summary: 'Remove a user; its connected clients are disconnected (culex user remove)', security: bearer, params: nameParam, response: ok } },
    async (req, reply) => {
      const { name } = req.params as { name: string }
      if (!store()) return noStore(reply)
      return change(async (s) => ((await s.remove(name)) ? { removed: name } : reply.status(404).send({ error: `no user ${name}` })))
    },
  )

  const aclOnlyCluster = (reply: FastifyReply) =>
    reply.status(409).send({ error: `a single node reads its ACL from acl_file${config.acl_file ? ` (${config.acl_file})` : ''}: edit that file (it is reloaded when it changes)` })

  app.get('/acl', { schema: { tags: ['acl'], summary: 'The ACL in force (culex acl show)', security: bearer, response: { 200: aclSchema, ...adminErrors } } }, async () => {
    if (ctx.db) return { acl: (await new RedisUserStore(config.redis_url!, ctx.db).getAcl()) ?? null }
    return { acl: config.acl_file ? readFileSync(config.acl_file, 'utf8') : null }
  })

  app.put(
    '/acl',
    { schema: { tags: ['acl'], summary: 'Validate an ACL and make it the cluster ACL (culex acl set); 400 names the bad rule', security: bearer, body: { type: 'object', properties: { acl: { type: 'string' } }, required: ['acl'], additionalProperties: false }, response: { 200: aclSchema, ...adminErrors } } },
    async (req, reply) => {
      if (!ctx.db) return aclOnlyCluster(reply)
      const text = (req.body as { acl: string }).acl
      try {
        Acl.parse(text, 'ACL')
      } catch (err) {
        return reply.status(400).send({ error: (err as Error).message })
      }
      await new RedisUserStore(config.redis_url!, ctx.db).setAcl(text)
      await ctx.security.reload()
      return { acl: text }
    },
  )

  app.delete('/acl', { schema: { tags: ['acl'], summary: 'Remove the cluster ACL: no topic restrictions (culex acl clear)', security: bearer, response: { 200: aclSchema, ...adminErrors } } }, async (_req, reply) => {
    if (!ctx.db) return aclOnlyCluster(reply)
    await new RedisUserStore(config.redis_url!, ctx.db).setAcl(undefined)
    await ctx.security.reload()
    return { acl: null }
  })
}
