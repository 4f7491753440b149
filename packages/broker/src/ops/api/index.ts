/**
 * The admin REST API, /api/v1 on every node's ops server, with cluster-wide answers: node-local
 * facts come from every node over Redis (rpc.ts), shared state (sessions, retained, users, ACL)
 * from Redis; memory mode answers for the one node. One file per resource; the OpenAPI document
 * (/api/v1/openapi.json, public: it holds no data) is generated from the routes' JSON schemas.
 * Every other route needs `Authorization: Bearer <admin_token>` (auth/admin.ts); POST /publish
 * also takes an MQTT user's Basic credentials.
 */
import swagger from '@fastify/swagger'
import type { Aedes } from 'aedes'
import type { FastifyInstance } from 'fastify'
import type { Security } from '../../auth/setup.js'
import { checkAdmin } from '../../auth/admin.js'
import type { Backend } from '../../cluster/backend.js'
import type { CulexConfig } from '../../config/schema.js'
import type { Logger } from '../../log.js'
import { VERSION } from '../../version.js'
import type { OpsPlugin } from '../http.js'
import type { HotCounters } from '../metrics.js'
import { clientRoutes } from './clients.js'
import { dashboardRoutes } from './dashboard.js'
import { persistenceOf, type ApiContext } from './context.js'
import { localHandlers } from './local.js'
import { MemorySessions } from './memory-sessions.js'
import { nodeRoutes } from './nodes.js'
import { publishRoutes } from './publish.js'
import { retainedRoutes, retainedTopicsOf, treeTopicsOf } from './retained.js'
import { localRpc, redisRpc } from './rpc.js'
import { sessionRoutes } from './sessions.js'
import { userRoutes } from './users.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** no admin token needed */
    public?: boolean
    /** an MQTT user's Basic credentials are checked by the route itself */
    basicAuth?: boolean
  }
}

export const API_PREFIX = '/api/v1'

export interface Api {
  plugin: OpsPlugin
  ctx: ApiContext
  close(): Promise<void>
}

export async function createApi(opts: {
  config: CulexConfig
  nodeId: string
  broker: Aedes
  backend: Backend
  security: Security
  counters: HotCounters
  log: Logger
}): Promise<Api> {
  const { config, nodeId, broker, backend, security, counters, log } = opts
  const local = localHandlers({ broker, nodeId, counters, usernameOf: security.usernameOf })
  const rpc = backend.links
    ? await redisRpc({ sub: backend.links.sub, pub: backend.links.pub, nodeId, handlers: local.handlers, log })
    : localRpc(nodeId, local.handlers)
  const sessions = backend.links ? undefined : new MemorySessions(broker)
  const ctx: ApiContext = {
    config,
    nodeId,
    broker,
    persistence: persistenceOf(broker),
    rpc,
    db: backend.links?.data,
    retainedTopics: retainedTopicsOf(backend.links) ?? treeTopicsOf(broker),
    security,
    counters,
    sessions,
    log,
  }

  const plugin: OpsPlugin = async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: { title: 'Culex admin API', version: VERSION, description: 'Cluster-wide administration of a Culex MQTT broker cluster; any node answers for every node.' },
        servers: [{ url: '/' }],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'the admin_token' },
            basicAuth: { type: 'http', scheme: 'basic', description: 'an MQTT user (POST /api/v1/publish only); its ACL applies' },
          },
        },
      },
      hiddenTag: 'X-HIDDEN',
      hideUntagged: true,
    })
    await app.register(
      async (api) => {
        api.addHook('onRequest', async (req, reply) => {
          const cfg = req.routeOptions.config
          if (cfg.public) return
          if (cfg.basicAuth && /^Basic\s/i.test(req.headers.authorization ?? '')) return
          if (!checkAdmin(config.admin_token, req, reply)) return reply
        })
        api.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger())
        nodeRoutes(api, ctx)
        clientRoutes(api, ctx)
        sessionRoutes(api, ctx)
        retainedRoutes(api, ctx)
        publishRoutes(api, ctx)
        userRoutes(api, ctx)
      },
      { prefix: API_PREFIX },
    )
    dashboardRoutes(app)
  }

  return {
    plugin,
    ctx,
    async close() {
      local.close()
      sessions?.close()
      await rpc.close()
    },
  }
}
