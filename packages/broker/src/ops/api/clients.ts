/**
 * Connected clients, cluster-wide: every node lists its own (local.ts) and the pages are merged
 * here. DELETE kicks the client on whichever node holds it.
 */
import type { FastifyInstance } from 'fastify'
import type { ApiContext } from './context.js'
import type { ClientFilter, ClientInfo } from './local.js'
import { adminErrors, bearer, idParam, pageOf, pageQuery } from './schemas.js'

export const clientSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    username: { type: ['string', 'null'] },
    node: { type: 'string' },
    address: { type: ['string', 'null'], description: 'the client address (through HAProxy: the real one, from PROXY protocol)' },
    protocol: { type: ['integer', 'null'], description: 'MQTT protocol level (4 = 3.1.1)' },
    keepalive_s: { type: 'integer' },
    clean: { type: 'boolean', description: 'clean session' },
    subscriptions: { type: 'integer' },
    inflight: { type: 'integer', description: 'inbound QoS 2 messages awaiting PUBREL' },
    queued_bytes: { type: 'integer', description: 'bytes waiting to be written to the client' },
  },
  required: ['id', 'node'],
} as const

const subscriptionSchema = {
  type: 'object',
  properties: { topic: { type: 'string' }, qos: { type: 'integer' } },
  required: ['topic', 'qos'],
} as const

export async function listClients(ctx: ApiContext, f: Required<Pick<ClientFilter, 'offset' | 'limit'>> & ClientFilter) {
  const { answers, missing } = await ctx.rpc.all<{ total: number; items: ClientInfo[] }>('clients', { ...f })
  let total = 0
  const all: ClientInfo[] = []
  for (const a of answers) {
    total += a.result.total
    all.push(...a.result.items)
  }
  all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) || a.node.localeCompare(b.node))
  return { total, offset: f.offset, limit: f.limit, nodes_missing: missing, items: all.slice(f.offset, f.offset + f.limit) }
}

/** kick a client wherever it is connected; true if some node had it */
export async function kick(ctx: ApiContext, id: string): Promise<boolean> {
  const { answers } = await ctx.rpc.all<boolean>('kick', { id })
  return answers.some((a) => a.result === true)
}

export function clientRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/clients',
    {
      schema: {
        tags: ['clients'],
        summary: 'Clients connected anywhere in the cluster, by client id; filters combine',
        security: bearer,
        querystring: {
          type: 'object',
          properties: {
            client_id: { type: 'string', description: 'client ids starting with this' },
            username: { type: 'string', description: 'this username only' },
            topic: { type: 'string', description: 'clients with a subscription whose filter starts with this' },
            node: { type: 'string', description: 'clients of this node only' },
            ...pageQuery,
          },
        },
        response: { 200: pageOf(clientSchema), ...adminErrors },
      },
    },
    async (req) => listClients(ctx, req.query as ClientFilter & { offset: number; limit: number }),
  )

  app.get(
    '/clients/:id',
    { schema: { tags: ['clients'], summary: 'One connected client', security: bearer, params: idParam, response: { 200: clientSchema, ...adminErrors } } },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      const page = await listClients(ctx, { client_id: id, offset: 0, limit: 1000 })
      const found = page.items.find((c) => c.id === id)
      return found ?? reply.status(404).send({ error: `client ${id} is not connected` })
    },
  )

  app.delete(
    '/clients/:id',
    {
      schema: {
        tags: ['clients'],
        summary: 'Disconnect (kick) a client, on whichever node holds it; its persistent session stays (DELETE /sessions/{id} ends it)',
        security: bearer,
        params: idParam,
        response: { 200: { type: 'object', properties: { disconnected: { type: 'string' } }, required: ['disconnected'] }, ...adminErrors },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      if (await kick(ctx, id)) return { disconnected: id }
      return reply.status(404).send({ error: `client ${id} is not connected` })
    },
  )

  app.get(
    '/clients/:id/subscriptions',
    {
      schema: {
        tags: ['clients'],
        summary: "A client's subscriptions (connected, or its persistent session's)",
        security: bearer,
        params: idParam,
        response: { 200: { type: 'object', properties: { client_id: { type: 'string' }, subscriptions: { type: 'array', items: subscriptionSchema } } }, ...adminErrors },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const subs = await ctx.persistence.subscriptionsByClient({ id })
      return { client_id: id, subscriptions: subs.map((s) => ({ topic: s.topic, qos: s.qos })).sort((a, b) => a.topic.localeCompare(b.topic)) }
    },
  )
}
