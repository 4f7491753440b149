/**
 * Persistent sessions (`clean: false`), online or not. Cluster: the session ids are in Redis
 * (aedes-persistence-redis' `clients` set: ids with stored subscriptions, and `culex:sessions`:
 * ids that hold a session, broker/conformance-session.ts), each with its queue `outgoing:<id>`
 * (cluster/outgoing.ts); which are online comes from the nodes (local.ts). Memory mode: the
 * node's own note of them (memory-sessions.ts) and the queue from the persistence.
 * DELETE ends a session: the client is kicked if connected, its subscriptions and queue go.
 */
import type { FastifyInstance } from 'fastify'
import { CLIENTS_SET, SESSIONS_KEY, clientSubsKey, outgoingKey } from '../../cluster/keys.js'
import { kick } from './clients.js'
import type { ApiContext } from './context.js'
import { adminErrors, bearer, idParam, pageOf, pageQuery } from './schemas.js'
import { SESSION_ENDED } from '../../broker/conformance-session.js'

const sessionSchema = {
  type: 'object',
  properties: {
    client_id: { type: 'string' },
    online: { type: 'boolean' },
    node: { type: ['string', 'null'], description: 'where it is connected' },
    subscriptions: { type: 'integer' },
    queued: { type: 'integer', description: 'QoS 1/2 messages queued for it (in flight included)' },
  },
  required: ['client_id', 'online', 'subscriptions', 'queued'],
} as const

interface Session {
  client_id: string
  online: boolean
  node: string | null
  subscriptions: number
  queued: number
}

async function online(ctx: ApiContext): Promise<Map<string, { node: string; clean: boolean }>> {
  const { answers } = await ctx.rpc.all<Array<{ id: string; clean: boolean }>>('online')
  const out = new Map<string, { node: string; clean: boolean }>()
  for (const a of answers) for (const c of a.result) out.set(c.id, { node: a.node, clean: c.clean })
  return out
}

async function sessionIds(ctx: ApiContext): Promise<Set<string>> {
  if (ctx.db) return new Set(await ctx.db.sunion(CLIENTS_SET, SESSIONS_KEY))
  return new Set(ctx.sessions?.ids ?? [])
}

/** subscription and queue counts of these sessions */
async function details(ctx: ApiContext, ids: string[]): Promise<Array<{ subscriptions: number; queued: number }>> {
  if (ctx.db) {
    const p = ctx.db.pipeline()
    for (const id of ids) p.hlen(clientSubsKey(id)).llen(outgoingKey(id))
    const res = (await p.exec()) ?? []
    return ids.map((_, i) => ({ subscriptions: Number(res[2 * i]?.[1] ?? 0), queued: Number(res[2 * i + 1]?.[1] ?? 0) }))
  }
  return Promise.all(
    ids.map(async (id) => {
      let queued = 0
      for await (const _ of ctx.persistence.outgoingStream({ id })) queued++
      return { subscriptions: (await ctx.persistence.subscriptionsByClient({ id })).length, queued }
    }),
  )
}

export async function listSessions(ctx: ApiContext, f: { client_id?: string; online?: boolean; offset: number; limit: number }) {
  const [ids, on] = await Promise.all([sessionIds(ctx), online(ctx)])
  // a connected persistent client holds a session even before it subscribed; a clean one holds none
  for (const [id, c] of on) {
    if (c.clean) ids.delete(id)
    else ids.add(id)
  }
  const matching = [...ids]
    .filter((id) => (!f.client_id || id.startsWith(f.client_id)) && (f.online === undefined || on.has(id) === f.online))
    .sort()
  const page = matching.slice(f.offset, f.offset + f.limit)
  const more = await details(ctx, page)
  const items: Session[] = page.map((id, i) => ({ client_id: id, online: on.has(id), node: on.get(id)?.node ?? null, ...more[i]! }))
  return { total: matching.length, offset: f.offset, limit: f.limit, items }
}

/** end a session; false when there was none */
export async function deleteSession(ctx: ApiContext, id: string): Promise<boolean> {
  const ids = await sessionIds(ctx)
  const kicked = await kick(ctx, id)
  if (!ids.has(id) && !kicked) return false
  const client = { id }
  await ctx.persistence.cleanSubscriptions(client)
  if (ctx.db) {
    // cleanSubscriptions dropped the queue (and the message bodies only it referenced) with the
    // last subscription (cluster/persistence.ts removeSubscriptions); the session marks go here
    await ctx.db.multi().srem(SESSIONS_KEY, id).srem(CLIENTS_SET, id).exec()
  } else {
    // the in-memory queue: acknowledged away, as Aedes does for a clean session (lib/handlers/connect.js emptyQueue)
    const queued: object[] = []
    for await (const p of ctx.persistence.outgoingStream(client)) queued.push(p)
    let messageId = 1
    for (const p of queued) {
      const packet = { ...p, messageId: messageId++ }
      await ctx.persistence.outgoingUpdate(client, packet)
      await ctx.persistence.outgoingClearMessageId(client, packet)
    }
    ctx.sessions?.ids.delete(id)
  }
  // the Session Present mark of this node (broker/conformance-session.ts; in Redis mode the SREM above)
  ;(ctx.broker as unknown as NodeJS.EventEmitter).emit(SESSION_ENDED, id)
  return true
}

export function sessionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/sessions',
    {
      schema: {
        tags: ['sessions'],
        summary: 'Persistent sessions (clean: false), online or not, with their queued message counts',
        security: bearer,
        querystring: {
          type: 'object',
          properties: {
            client_id: { type: 'string', description: 'client ids starting with this' },
            online: { type: 'boolean', description: 'only online (true) or offline (false) sessions' },
            ...pageQuery,
          },
        },
        response: { 200: pageOf(sessionSchema), ...adminErrors },
      },
    },
    async (req) => listSessions(ctx, req.query as { client_id?: string; online?: boolean; offset: number; limit: number }),
  )

  app.delete(
    '/sessions/:id',
    {
      schema: {
        tags: ['sessions'],
        summary: 'End a persistent session: the client is disconnected if online, its subscriptions and queued messages are deleted',
        security: bearer,
        params: idParam,
        response: { 200: { type: 'object', properties: { deleted: { type: 'string' } }, required: ['deleted'] }, ...adminErrors },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      if (await deleteSession(ctx, id)) return { deleted: id }
      return reply.status(404).send({ error: `no session ${id}` })
    },
  )
}
