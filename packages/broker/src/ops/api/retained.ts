/**
 * Retained messages (cluster: in Redis, shared by every node; memory: the node's), read and
 * deleted through the persistence's documented interface. Deleting stores an empty retained
 * payload for the topic, which removes it [MQTT-3.3.1-10] without delivering anything to
 * subscribers (it is not published).
 */
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { RETAINED_HASH } from '../../seam/index.js'
import { filterMatches } from '../../shared/names.js'
import type { ApiContext, RetainedPacket } from './context.js'
import { adminErrors, bearer, pageOf, pageQuery } from './schemas.js'

const PREVIEW = 256

const retainedSchema = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    qos: { type: 'integer' },
    size: { type: 'integer', description: 'payload bytes' },
    encoding: { type: 'string', enum: ['utf8', 'base64'] },
    payload: { type: 'string', description: `the payload (in lists its first ${PREVIEW} bytes)` },
    truncated: { type: 'boolean' },
  },
  required: ['topic', 'qos', 'size', 'encoding', 'payload'],
} as const

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function encodePayload(payload: Buffer | Uint8Array | string, max = Number.POSITIVE_INFINITY) {
  const buf = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  const cut = buf.subarray(0, max)
  try {
    return { size: buf.length, encoding: 'utf8' as const, payload: utf8.decode(cut), truncated: cut.length < buf.length }
  } catch {
    // not UTF-8 (or a multi-byte character cut at the preview's end)
    return { size: buf.length, encoding: 'base64' as const, payload: cut.toString('base64'), truncated: cut.length < buf.length }
  }
}

const view = (p: RetainedPacket, max?: number) => ({ topic: p.topic, qos: p.qos, ...encodePayload(p.payload, max) })

const byTopic = (a: string, b: string): number => a.localeCompare(b)

/** cluster: the topics of Redis' retained hash (aedes-persistence-redis' layout, seam RETAINED_HASH), without the messages */
export function retainedTopicsOf(db: Redis | undefined): (() => Promise<string[]>) | undefined {
  return db ? () => db.hkeys(RETAINED_HASH) : undefined
}

/**
 * The topics of the retained messages matching `filter`, by topic, and (where the messages had to
 * be read to find them: memory mode) the messages. In a cluster only the topics are read and the
 * page's messages fetched: listing or paging through 100,000 retained messages fetched and
 * decoded them all for every request (1.2-1.4 s of a node's CPU; the dashboard asks every 5 s).
 */
async function matching(ctx: ApiContext, filter: string): Promise<{ topics: string[]; read?: Map<string, RetainedPacket> }> {
  if (ctx.retainedTopics) {
    const levels = filter.split('/')
    return { topics: (await ctx.retainedTopics()).filter((t) => filterMatches(levels, t)).sort(byTopic) }
  }
  const read = new Map<string, RetainedPacket>()
  for await (const p of ctx.persistence.createRetainedStream(filter)) read.set(p.topic, p)
  return { topics: [...read.keys()].sort(byTopic), read }
}

/** the retained message of one topic (a topic is no filter: the store looks it up) */
async function retainedOf(ctx: ApiContext, topic: string): Promise<RetainedPacket | undefined> {
  for await (const p of ctx.persistence.createRetainedStream(topic)) if (p.topic === topic) return p
  return undefined
}

/** the messages of `topics`, in that order; one deleted meanwhile is left out */
async function messagesOf(ctx: ApiContext, topics: string[], read?: Map<string, RetainedPacket>): Promise<RetainedPacket[]> {
  const got = read ? topics.map((t) => read.get(t)) : await Promise.all(topics.map((t) => retainedOf(ctx, t)))
  return got.filter((p): p is RetainedPacket => p !== undefined)
}

async function remove(ctx: ApiContext, topic: string): Promise<void> {
  await ctx.persistence.storeRetained({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false })
}

const filterQuery = {
  type: 'object',
  properties: { filter: { type: 'string', minLength: 1, default: '#', description: 'topic filter (+ and # wildcards)' }, ...pageQuery },
} as const
const topicParam = { type: 'object', properties: { '*': { type: 'string', minLength: 1, description: 'the topic' } } } as const

export function retainedRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/retained',
    { schema: { tags: ['retained'], summary: 'Retained messages matching a topic filter, by topic', security: bearer, querystring: filterQuery, response: { 200: pageOf(retainedSchema), ...adminErrors } } },
    async (req) => {
      const q = req.query as { filter: string; offset: number; limit: number }
      const { topics, read } = await matching(ctx, q.filter)
      const page = await messagesOf(ctx, topics.slice(q.offset, q.offset + q.limit), read)
      return { total: topics.length, offset: q.offset, limit: q.limit, items: page.map((p) => view(p, PREVIEW)) }
    },
  )

  app.delete(
    '/retained',
    {
      schema: {
        tags: ['retained'],
        summary: 'Delete every retained message matching a topic filter (filter required; # deletes all)',
        security: bearer,
        querystring: { type: 'object', properties: { filter: { type: 'string', minLength: 1 } }, required: ['filter'] },
        response: { 200: { type: 'object', properties: { deleted: { type: 'integer' } }, required: ['deleted'] }, ...adminErrors },
      },
    },
    async (req) => {
      const { topics } = await matching(ctx, (req.query as { filter: string }).filter)
      for (const t of topics) await remove(ctx, t)
      return { deleted: topics.length }
    },
  )

  app.get(
    '/retained/*',
    { schema: { tags: ['retained'], summary: 'The retained message of one topic (the rest of the path, URL-encoded)', security: bearer, params: topicParam, response: { 200: retainedSchema, ...adminErrors } } },
    async (req, reply) => {
      const topic = (req.params as { '*': string })['*']
      if (/[+#]/.test(topic)) return reply.status(400).send({ error: 'a topic, not a filter: no + or #' })
      const found = await retainedOf(ctx, topic)
      return found ? view(found) : reply.status(404).send({ error: `no retained message on ${topic}` })
    },
  )

  app.delete(
    '/retained/*',
    {
      schema: {
        tags: ['retained'],
        summary: 'Delete the retained message of one topic',
        security: bearer,
        params: topicParam,
        response: { 200: { type: 'object', properties: { deleted: { type: 'string' } }, required: ['deleted'] }, ...adminErrors },
      },
    },
    async (req, reply) => {
      const topic = (req.params as { '*': string })['*']
      if (/[+#]/.test(topic)) return reply.status(400).send({ error: 'a topic, not a filter: no + or # (DELETE /retained?filter= for many)' })
      if (!(await retainedOf(ctx, topic))) return reply.status(404).send({ error: `no retained message on ${topic}` })
      await remove(ctx, topic)
      return { deleted: topic }
    },
  )
}
