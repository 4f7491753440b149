/**
 * Ops HTTP server on Fastify: /healthz, /readyz, /metrics here, the admin endpoints
 * (auth/admin.ts), the REST API under /api/v1 and the dashboard (ops/api/) as plugins.
 * Every route has a JSON schema; the API's OpenAPI document is built from them (ops/api/index.ts).
 * No line per request is logged (Prometheus scrapes and HAProxy checks would flood the log);
 * errors answer `{"error": "..."}`.
 */
import type { Server } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { Logger } from '../log.js'
import type { Readiness } from './readiness.js'

/** a part of the ops server (admin endpoints, API, dashboard) */
export type OpsPlugin = (app: FastifyInstance) => void | Promise<void>

export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' } },
  required: ['error'],
} as const

const statusSchema = {
  type: 'object',
  properties: { status: { type: 'string' }, reasons: { type: 'array', items: { type: 'string' } } },
  required: ['status'],
} as const

export interface OpsServer {
  app: FastifyInstance
  /** the node:http server, for listen / stopAccepting / closeAllConnections */
  server: Server
}

export async function createOpsServer(
  readiness: Readiness,
  registry: Registry,
  log: Logger,
  plugins: OpsPlugin[] = [],
  /** largest request body: the API's publish takes payloads up to max_packet_size, base64 included */
  bodyLimit = 1 << 20,
  /** trusted_proxies: their X-Forwarded-For names the client (HAProxy's API port sets it) */
  trustedProxies: string[] = [],
): Promise<OpsServer> {
  const app = Fastify({
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    ...(trustedProxies.length > 0 ? { trustProxy: trustedProxies } : {}),
    // /api/v1/retained/<topic>: a topic may be long
    routerOptions: { maxParamLength: 65536 },
  })
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    const status = err.statusCode ?? (err.validation ? 400 : 500)
    if (status >= 500) app.log.warn({ err: err.message }, 'ops http error')
    void reply.status(status).send({ error: err.message })
  })
  app.setNotFoundHandler((_req, reply) => void reply.status(404).send({ error: 'not found' }))

  app.get('/healthz', { schema: { hide: true, response: { 200: statusSchema } } }, async () => ({ status: 'ok' }))
  app.get('/readyz', { schema: { hide: true, response: { 200: statusSchema, 503: statusSchema } } }, async (_req, reply) => {
    const { ready, reasons } = readiness.status()
    return reply.status(ready ? 200 : 503).send(ready ? { status: 'ready' } : { status: 'not ready', reasons })
  })
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const text = await registry.metrics()
    return reply.header('content-type', registry.contentType).send(text)
  })
  for (const plugin of plugins) await plugin(app)
  await app.ready()
  return { app, server: app.server }
}
