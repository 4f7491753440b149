/**
 * Retained messages (cluster: in Redis, shared by every node; memory: the node's), read and
 * deleted through the persistence's documented interface. Deleting stores an empty retained
 * payload for the topic, which removes it [MQTT-3.3.1-10] without delivering anything to
 * subscribers (it is not published).
 */
import type { FastifyInstance } from 'fastify'
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

async function retained(ctx: ApiContext, filter: string): Promise<RetainedPacket[]> {
  const out: RetainedPacket[] = []
  for await (const p of ctx.persistence.createRetainedStream(filter)) out.push(p)
  return out.sort((a, b) => a.topic.localeCompare(b.topic))
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
      const all = await retained(ctx, q.filter)
      return { total: all.length, offset: q.offset, limit: q.limit, items: all.slice(q.offset, q.offset + q.limit).map((p) => view(p, PREVIEW)) }
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
      const all = await retained(ctx, (req.query as { filter: string }).filter)
      for (const p of all) await remove(ctx, p.topic)
      return { deleted: all.length }
    },
  )

  app.get(
    '/retained/*',
    { schema: { tags: ['retained'], summary: 'The retained message of one topic (the rest of the path, URL-encoded)', security: bearer, params: topicParam, response: { 200: retainedSchema, ...adminErrors } } },
    async (req, reply) => {
      const topic = (req.params as { '*': string })['*']
      if (/[+#]/.test(topic)) return reply.status(400).send({ error: 'a topic, not a filter: no + or #' })
      const found = (await retained(ctx, topic)).find((p) => p.topic === topic)
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
      const found = (await retained(ctx, topic)).some((p) => p.topic === topic)
      if (!found) return reply.status(404).send({ error: `no retained message on ${topic}` })
      await remove(ctx, topic)
      return { deleted: topic }
    },
  )
}
