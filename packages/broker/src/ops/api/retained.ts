/**
 * Retained messages (cluster: in Redis, shared by every node; memory: the node's), read and
 * deleted through the persistence's documented interface. Deleting stores an empty retained
 * payload for the topic, which removes it [MQTT-3.3.1-10] without delivering anything to
 * subscribers (it is not published).
 */
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { RETAINED_HASH, decodeRetained, memoryRetainedTree } from '../../seam/index.js'
import { compareTopics } from '../../broker/topic-order.js'
import { filterMatches } from '../../shared/names.js'
import type { RetainedIndex } from '../../cluster/retained-index.js'
import type { Aedes } from 'aedes'
import type { ApiContext, RetainedPacket, RetainedTopics } from './context.js'
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

const sortByBytes = (topics: string[]): string[] => topics.sort(compareTopics)

/**
 * cluster: the topics of the retained messages matching a filter, through the index of retained
 * topics (cluster/retained-index.ts): the dashboard asks for `#` every 5 s, and with 100,000
 * retained messages HKEYS held Redis (every node's bus behind it) and the node's event loop (the
 * match and sort) for 0.2-0.4 s each time. While the index and the hash count apart (a node of an
 * earlier release wrote the hash) the hash's keys are read as before.
 */
export function retainedTopicsOf(links: { data: Redis; core: { retained: RetainedIndex } } | undefined): RetainedTopics | undefined {
  if (!links) return undefined
  const { data: db, core } = links
  const fromHash = async (filter: string): Promise<string[]> => {
    const levels = filter.split('/')
    return sortByBytes((await db.hkeys(RETAINED_HASH)).filter((t) => filterMatches(levels, t)))
  }
  return {
    async page(filter, offset, limit) {
      const got = await core.retained.list(filter, offset, limit)
      if (got) return got
      const topics = await fromHash(filter)
      return { total: topics.length, topics: topics.slice(offset, offset + limit) }
    },
    async all(filter) {
      return (await core.retained.all(filter)) ?? fromHash(filter)
    },
    async messages(topics) {
      if (topics.length === 0) return []
      return (await db.hmgetBuffer(RETAINED_HASH, ...topics)).map((v) => (v ? (decodeRetained(v) as RetainedPacket) : undefined))
    },
  }
}

/**
 * memory mode: the node's retain tree (seam/memory-retained.ts, broker/retain-tree.ts) lists the
 * topics in byte order without reading the messages: the dashboard's `#` every 5 s read, sorted
 * and copied every retained message (205-255 ms of the node's event loop at 100,000).
 */
export function treeTopicsOf(broker: Aedes): RetainedTopics | undefined {
  const tree = memoryRetainedTree(broker)
  if (!tree) return undefined
  return {
    page: async (filter, offset, limit) => tree.page(filter, offset, limit),
    all: async (filter) => tree.page(filter).topics,
    messages: async (topics) => topics.map((t) => tree.get(t) as RetainedPacket | undefined),
  }
}

/**
 * The topics of the retained messages matching `filter`, by topic, from `offset` (`limit` of them;
 * all without), how many there are and (where the messages had to be read to find them: memory
 * mode) the messages. In a cluster only the topics are read and the page's messages fetched:
 * listing or paging through 100,000 retained messages fetched and decoded them all for every
 * request (1.2-1.4 s of a node's CPU).
 */
async function matching(ctx: ApiContext, filter: string, offset = 0, limit?: number): Promise<{ total: number; topics: string[]; read?: Map<string, RetainedPacket> }> {
  if (ctx.retainedTopics) {
    if (limit !== undefined) return ctx.retainedTopics.page(filter, offset, limit)
    const topics = await ctx.retainedTopics.all(filter)
    return { total: topics.length, topics }
  }
  const read = new Map<string, RetainedPacket>()
  for await (const p of ctx.persistence.createRetainedStream(filter)) read.set(p.topic, p)
  const topics = sortByBytes([...read.keys()])
  return { total: topics.length, topics: limit === undefined ? topics : topics.slice(offset, offset + limit), read }
}

/** the retained message of one topic (a topic is no filter: the store looks it up) */
async function retainedOf(ctx: ApiContext, topic: string): Promise<RetainedPacket | undefined> {
  for await (const p of ctx.persistence.createRetainedStream(topic)) if (p.topic === topic) return p
  return undefined
}

/** the messages of `topics`, in that order; one deleted meanwhile is left out */
async function messagesOf(ctx: ApiContext, topics: string[], read?: Map<string, RetainedPacket>): Promise<RetainedPacket[]> {
  const got = read ? topics.map((t) => read.get(t)) : ctx.retainedTopics ? await ctx.retainedTopics.messages(topics) : await Promise.all(topics.map((t) => retainedOf(ctx, t)))
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
    { schema: { tags: ['retained'], summary: 'Retained messages matching a topic filter, by topic (byte order of the UTF-8 topics)', security: bearer, querystring: filterQuery, response: { 200: pageOf(retainedSchema), ...adminErrors } } },
    async (req) => {
      const q = req.query as { filter: string; offset: number; limit: number }
      const { total, topics, read } = await matching(ctx, q.filter, q.offset, q.limit)
      const page = await messagesOf(ctx, topics, read)
      return { total, offset: q.offset, limit: q.limit, items: page.map((p) => view(p, PREVIEW)) }
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
