/**
 * POST /api/v1/publish: HTTP publish, as an MQTT client would publish, through this node's
 * broker (Aedes' documented `broker.publish`). Its callback comes once the publish is done:
 * delivered to this node's subscribers, accepted by Redis for the other nodes and queued for
 * offline persistent sessions (the same point at which an MQTT QoS 1 PUBLISH gets its PUBACK,
 * broker/puback-after-publish.ts), so for QoS 1/2 a 200 means what a PUBACK means.
 *
 * Who: the admin token (Bearer), or an MQTT user (Basic), whose ACL then applies to the topic
 * (auth/admin.ts); a denied topic is 403 and counted in culex_publish_denied_total. Failed
 * logins count in culex_auth_failures_total and the backoff of the client's address (behind
 * HAProxy, from X-Forwarded-For, believed only from trusted_proxies) and of the username. Nobody
 * publishes to $SYS (auth/authorize.ts), and the topic obeys what an MQTT PUBLISH must: no
 * wildcards [MQTT-3.3.2-2], not empty [MQTT-4.7.3-1], no U+0000 [MQTT-1.5.3-2], and the node's
 * max_topic_length / max_topic_levels / max_packet_size.
 */
import type { FastifyInstance } from 'fastify'
import { basicCredentials } from '../../auth/admin.js'
import type { ApiContext } from './context.js'
import { adminErrors } from './schemas.js'

interface PublishBody {
  topic: string
  payload: string
  encoding: 'utf8' | 'base64'
  qos: 0 | 1 | 2
  retain: boolean
}

export function topicProblem(topic: string, maxLength: number, maxLevels: number): string | undefined {
  if (topic.length === 0) return 'the topic is empty [MQTT-4.7.3-1]'
  if (/[+#]/.test(topic)) return 'wildcards (+, #) are not allowed in a topic name [MQTT-3.3.2-2]'
  if (topic.includes('\u0000')) return 'U+0000 is not allowed in a topic [MQTT-1.5.3-2]'
  if (topic.startsWith('$SYS')) return '$SYS topics are reserved'
  if (topic.length > maxLength) return `the topic is longer than max_topic_length (${maxLength})`
  if (topic.split('/').length > maxLevels) return `the topic has more than max_topic_levels (${maxLevels}) levels`
  return undefined
}

export function publishRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { config, security } = ctx
  app.post(
    '/publish',
    {
      config: { basicAuth: true },
      schema: {
        tags: ['publish'],
        summary: 'Publish a message; with Basic auth (an MQTT user) that user\'s ACL applies',
        security: [{ bearerAuth: [] }, { basicAuth: [] }],
        body: {
          type: 'object',
          properties: {
            topic: { type: 'string' },
            payload: { type: 'string', default: '' },
            encoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8', description: 'how payload is written' },
            qos: { type: 'integer', enum: [0, 1, 2], default: 0 },
            retain: { type: 'boolean', default: false },
          },
          required: ['topic'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            description: 'published; for QoS 1/2 acknowledged means what a PUBACK means: delivered here, in Redis for the other nodes, queued for offline sessions',
            properties: {
              topic: { type: 'string' },
              qos: { type: 'integer' },
              retain: { type: 'boolean' },
              bytes: { type: 'integer' },
              acknowledged: { type: 'boolean' },
            },
            required: ['topic', 'qos', 'retain', 'bytes', 'acknowledged'],
          },
          ...adminErrors,
        },
      },
    },
    async (req, reply) => {
      const body = req.body as PublishBody
      const problem = topicProblem(body.topic, config.max_topic_length, config.max_topic_levels)
      if (problem) return reply.status(400).send({ error: problem })
      if (body.encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(body.payload)) return reply.status(400).send({ error: 'payload is not base64' })
      const payload = Buffer.from(body.payload, body.encoding)
      if (payload.length > config.max_packet_size) return reply.status(400).send({ error: `payload larger than max_packet_size (${config.max_packet_size} bytes)` })

      const basic = /^Basic\s/i.test(req.headers.authorization ?? '') ? basicCredentials(req.headers.authorization) : undefined
      if (/^Basic\s/i.test(req.headers.authorization ?? '')) {
        const may = basic && (await security.httpLogin.login(basic.username, basic.password, req.ip))
        if (!may) {
          ctx.counters.authFailures++
          ctx.log.warn({ username: basic?.username, address: req.ip }, 'HTTP publish: authentication failed')
          return reply.status(401).header('www-authenticate', 'Basic realm="culex"').send({ error: 'bad user name or password' })
        }
        if (!may(body.topic)) {
          ctx.counters.publishDenied++
          ctx.log.warn({ username: basic.username, topic: body.topic }, 'HTTP publish denied by ACL')
          return reply.status(403).send({ error: `user ${basic.username} may not publish to ${body.topic}` })
        }
      }

      const packet = { cmd: 'publish' as const, topic: body.topic, payload, qos: body.qos, retain: body.retain, dup: false }
      try {
        await new Promise<void>((resolve, reject) => ctx.broker.publish(packet, (err?: Error) => (err ? reject(err) : resolve())))
      } catch (err) {
        return reply.status(503).send({ error: `not published: ${(err as Error).message}` })
      }
      return { topic: body.topic, qos: body.qos, retain: body.retain, bytes: payload.length, acknowledged: body.qos > 0 }
    },
  )
}
