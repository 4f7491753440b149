/** GET /api/v1/nodes: every node of the cluster, live ones with their own figures. */
import type { FastifyInstance } from 'fastify'
import { listNodes } from '../../cluster/registry.js'
import type { ApiContext } from './context.js'
import type { NodeFacts } from './local.js'
import { adminErrors, bearer } from './schemas.js'

const nodeSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['live', 'stopped', 'dead'] },
    version: { type: 'string' },
    uptime_s: { type: 'integer' },
    clients: { type: 'integer' },
    messages_in_total: { type: 'integer', description: 'PUBLISH packets received from clients' },
    messages_out_total: { type: 'integer', description: 'PUBLISH packets delivered to subscribers' },
    rate_in: { type: 'number', description: 'messages in per second, last 5 s' },
    rate_out: { type: 'number', description: 'messages out per second, last 5 s' },
    dropped_total: { type: 'integer', description: 'QoS 0 messages dropped' },
    denied_total: { type: 'integer', description: 'PUBLISH packets denied' },
    auth_failures_total: { type: 'integer' },
    silent_ms: { type: 'integer', description: 'cluster: ms since its last heartbeat' },
  },
  required: ['id', 'state'],
} as const

export type NodeView = Partial<NodeFacts> & { id: string; state: 'live' | 'stopped' | 'dead'; silent_ms?: number }

export async function clusterNodes(ctx: ApiContext): Promise<{ nodes: NodeView[]; missing: number }> {
  const { answers, missing } = await ctx.rpc.all<NodeFacts>('node')
  const facts = new Map(answers.map((a) => [a.node, a.result]))
  if (!ctx.db) return { nodes: answers.map((a) => ({ ...a.result, state: 'live' as const })), missing }
  const registered = await listNodes(ctx.db)
  const nodes: NodeView[] = registered.map((n) => {
    const f = facts.get(n.id)
    facts.delete(n.id)
    return { ...(f ?? { id: n.id, clients: n.clients, version: n.info.version }), state: n.state, silent_ms: n.silentMs }
  })
  // answered but not (yet) in the registry: starting up
  for (const f of facts.values()) nodes.push({ ...f, state: 'live' })
  return { nodes: nodes.sort((a, b) => a.id.localeCompare(b.id)), missing }
}

export function nodeRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary: 'Every node of the cluster (memory mode: this one), with version, uptime, clients and message rates',
        security: bearer,
        response: {
          200: { type: 'object', properties: { nodes: { type: 'array', items: nodeSchema }, nodes_missing: { type: 'integer' } }, required: ['nodes'] },
          ...adminErrors,
        },
      },
    },
    async () => {
      const { nodes, missing } = await clusterNodes(ctx)
      return { nodes, nodes_missing: missing }
    },
  )
}
