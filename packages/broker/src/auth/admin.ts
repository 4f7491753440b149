/**
 * Who may use the ops server's admin parts:
 *
 * - the admin token: `Authorization: Bearer <admin_token>`, compared in constant time, for
 *   /admin/* and everything under /api/v1 (ops/api/). Without an admin_token configured they
 *   answer 403; with a missing or wrong token 401, with `WWW-Authenticate: Bearer`.
 * - an MQTT user, for HTTP publish only: `Authorization: Basic` with the user's name and
 *   password, checked like an MQTT CONNECT (scrypt, failed-login backoff per address and per
 *   username), then that user's ACL applies to the topic (ops/api/publish.ts).
 *
 * The three original admin endpoints stay where they were:
 *
 *   GET  /admin/security              allow_anonymous, user count, ACL on/off, limits state
 *   POST /admin/reload                re-read users and ACL now
 *   POST /admin/disconnect?client=ID  close one client's connection (this node only; the API's
 *                                     DELETE /api/v1/clients/{id} works cluster-wide)
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorSchema, type OpsPlugin } from '../ops/http.js'
import type { FailureBackoff } from '../limits/rate.js'
import { addressKey } from '../limits/rate.js'
import { canPublish } from './acl.js'
import { dummyHash, verifyPassword } from './password.js'
import type { AuthState } from './state.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export function tokenMatches(expected: string | undefined, header: string | undefined): boolean {
  if (!expected || !header) return false
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (!m) return false
  return timingSafeEqual(digest(expected), digest(m[1]!))
}

/** answers 403/401 and returns false unless the request carries the admin token */
export function checkAdmin(token: string | undefined, req: FastifyRequest, reply: FastifyReply): boolean {
  if (!token) {
    void reply.status(403).send({ error: 'the admin API is off: set admin_token (CULEX_ADMIN_TOKEN)' })
    return false
  }
  if (!tokenMatches(token, req.headers.authorization)) {
    void reply.status(401).header('www-authenticate', 'Bearer').send({ error: 'admin token required: Authorization: Bearer <admin_token>' })
    return false
  }
  return true
}

/** `Authorization: Basic base64(user:password)` -> its parts */
export function basicCredentials(header: string | undefined): { username: string; password: Buffer } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '')
  if (!m) return undefined
  const raw = Buffer.from(m[1]!, 'base64')
  const colon = raw.indexOf(0x3a)
  if (colon <= 0) return undefined
  return { username: raw.subarray(0, colon).toString('utf8'), password: raw.subarray(colon + 1) }
}

export interface HttpLogin {
  /** undefined = refused (wrong credentials or backoff); else whether the user may publish to a topic */
  login(username: string, password: Buffer, address: string | undefined): Promise<((topic: string) => boolean) | undefined>
}

/** MQTT users over HTTP: the same users, passwords, backoff and ACL as a CONNECT (auth/authenticate.ts) */
export function createHttpLogin(state: AuthState, addressBackoff: FailureBackoff, userBackoff: FailureBackoff): HttpLogin {
  return {
    async login(username, password, address) {
      const key = addressKey(address)
      const now = Date.now()
      if (addressBackoff.blockedFor(key, now) > 0 || userBackoff.blockedFor(username, now) > 0) return undefined
      const user = state.users.get(username)
      const ok = await verifyPassword(password, user?.hash ?? (await dummyHash()))
      if (!ok || !user) {
        addressBackoff.fail(key, Date.now())
        userBackoff.fail(username, Date.now())
        return undefined
      }
      userBackoff.succeed(username)
      const acl = state.acl
      if (!acl) return () => true
      const grants = acl.grantsFor(username, user.roles)
      // %c in a rule stands for the client id: an HTTP publish has none, so such a rule matches no topic
      return (topic) => canPublish(grants, topic, username, '')
    },
  }
}

export interface AdminActions {
  status(): Record<string, unknown>
  reload(): Promise<void>
  /** true when such a client was connected */
  disconnect(clientId: string): boolean
}

const anyObject = { type: 'object', additionalProperties: true } as const

export function adminRoutes(token: string | undefined, actions: AdminActions): OpsPlugin {
  return (app: FastifyInstance) => {
    const guard = {
      onRequest: async (req: FastifyRequest, reply: FastifyReply) => {
        if (!checkAdmin(token, req, reply)) return reply
      },
    }
    const hide = { hide: true, response: { 200: anyObject, 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema } }
    app.get('/admin/security', { ...guard, schema: hide }, async () => actions.status())
    app.post('/admin/reload', { ...guard, schema: hide }, async () => {
      await actions.reload()
      return actions.status()
    })
    app.post(
      '/admin/disconnect',
      { ...guard, schema: { ...hide, querystring: { type: 'object', properties: { client: { type: 'string' } } } } },
      async (req, reply) => {
        const id = (req.query as { client?: string }).client
        if (!id) return reply.status(400).send({ error: 'client=<id> required' })
        const found = actions.disconnect(id)
        return reply.status(found ? 200 : 404).send(found ? { disconnected: id } : { error: 'no such client on this node' })
      },
    )
  }
}
